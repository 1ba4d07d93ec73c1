"""The sanity checks of the debugging gauntlet, as functions the tests call too:
memorising a fixed batch, gradient flow, gradcheck of the loss, statistics at
initialisation, the LR range test. judge/gauntlet.py runs them on the project's
own data, model and loss and prints the table; tests/test_overfit.py and
tests/test_gradients.py assert on them directly.

A method can declare, once, next to its loss, that a generic check cannot apply to
it and why: ``NOT_APPLICABLE = {"overfit": "a generator has no fixed target to
memorise"}`` in loss.py (the names are CHECKS' keys). The gauntlet then prints
"n/a: <why>" for that row without running it, and the tests skip with the same
reason; an undeclared failure still fails.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from .. import loss as paper_loss
from .. import model as paper_model
from ..engine.batches import map_tensors
from . import data_checks, player_steps
from .player_steps import optimisers, step_players

# One loss for the whole model, or the players loss.py declares (judge/player_steps.py).
# Looked up at call time (through these names), so a test can swap them.
loss_fn = getattr(paper_loss, "loss_fn", None)
memorised = getattr(paper_loss, "memorised", None)


def players_of(model: nn.Module) -> list:
    """The players every check below goes through (judge/player_steps.py), so each
    parameter is checked in its own player's step; a test swaps this to plant a bug
    in every player's loss at once."""
    return player_steps.players_of(model, loss_fn)


# The generic checks a method may declare not applicable (loss.NOT_APPLICABLE),
# and where each runs.
CHECKS = {
    "overfit": "memorise 1, 10, 100 examples (tests/test_overfit.py; gauntlet: overfit N)",
    "gradient flow": "a finite, non-zero gradient for every parameter (tests/test_gradients.py)",
    "gradcheck": "autograd = finite differences for the loss (tests/test_gradients.py)",
    "batch independence": "no example's output depends on another's input (tests/test_gradients.py)",
    "loss at init": "the untrained loss is expected_loss_at_init's (tests/test_init.py)",
    "init statistics": "activations and gradients at initialisation (gauntlet)",
    "input baseline": "zeroed inputs do clearly worse than real ones (gauntlet; tests/test_data_path.py)",
    "LR range": "the loss on a fixed batch falls somewhere in 1e-6..1 (gauntlet)",
    "too good to be true": "a tenth of the run no better than the paper's number (gauntlet)",
    "causality": "no output depends on a later input, at every cut (tests/test_generation.py)",
    "generation": "generate() writes what the forward pass predicts (tests/test_generation.py)",
}

# The checks that need model.generate: a model without it is not autoregressive.
NEEDS_GENERATE = ("causality", "generation")


def not_applicable(check: str) -> str | None:
    """Why ``check`` cannot apply to this method, as loss.NOT_APPLICABLE declares,
    or None (it applies). A declared name that is no generic check is an error."""
    if check not in CHECKS:
        raise KeyError(f"{check!r} is not one of the generic checks: {', '.join(CHECKS)}")
    declared = getattr(paper_loss, "NOT_APPLICABLE", {})
    unknown = sorted(set(declared) - set(CHECKS))
    if unknown:
        raise ValueError(
            f"loss.NOT_APPLICABLE names {', '.join(map(repr, unknown))}: not a generic "
            f"check; use one of {', '.join(CHECKS)}"
        )
    if check in NEEDS_GENERATE and getattr(paper_model, "generate", None) is None:
        return declared.get(check, "model.py defines no generate(): not an autoregressive model")
    return declared.get(check)


def causality_problems(model, tokens: torch.Tensor, tolerance: float = 1e-4) -> list[str]:
    """The cuts k at which the outputs for the first k positions change when the
    inputs after them are cut off: model(tokens[:, :k]) must equal model(tokens)[:, :k]
    at every k. Checks the causal mask at every position at once, and positions
    counted from the start (a model that numbers them from the end fails too)."""
    model.eval()
    with torch.no_grad():
        full = model(tokens)
        problems = []
        for k in range(1, tokens.size(1)):
            off = (model(tokens[:, :k]) - full[:, :k]).abs().max().item()
            if off > tolerance:
                problems.append(f"cut at {k}: outputs before it moved by {off:.3g}")
    return problems


def generation_problems(model, prompt: torch.Tensor, n: int) -> list[str]:
    """Greedy generation against the forward pass over what it generated: each
    generated token must be the argmax of the logits the forward pass gives at the
    position before it (a decoding path with its own positions or mask fails)."""
    model.eval()
    written = paper_model.generate(model, prompt, n)
    if written.shape != (prompt.size(0), prompt.size(1) + n):
        return [
            f"generate returned {tuple(written.shape)} for {n} tokens after {tuple(prompt.shape)}"
        ]
    if not torch.equal(written[:, : prompt.size(1)], prompt):
        return ["generate changed the prompt"]
    with torch.no_grad():
        predicted = model(written[:, :-1])[:, prompt.size(1) - 1 :].argmax(dim=-1)
    wrong = (predicted != written[:, prompt.size(1) :]).nonzero()
    if len(wrong):
        row, position = wrong[0].tolist()
        return [f"example {row}, generated token {position}: not the forward pass's argmax"]
    return []


def losses_at_init(model, batch, data_spec, loss_cfg) -> tuple[dict, dict]:
    """Measured and expected loss of the untrained model, per player ({None: ...}
    for one): loss.expected_loss_at_init returns a number, or with PLAYERS a
    number per player. In evaluation mode, without gradients; the same random draws."""
    model.eval()
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        measured = {p.name: p.loss(model, batch, loss_cfg).item() for p in players_of(model)}
    expected = paper_loss.expected_loss_at_init(data_spec, batch, loss_cfg)
    return measured, expected if isinstance(expected, dict) else {None: expected}


INIT_TOLERANCE = 0.05  # |loss at init - expected|, in the loss's own units
DEAD_UNIT_LIMIT = 0.5  # a layer with more than this share of never-positive units fails
DEAD_UNIT_MIN_WIDTH = 16  # ... counted in layers of at least this many units
ACTIVATION_STD_RANGE = (1e-3, 1e2)  # per-layer output std at init
GRAD_SPREAD_LIMIT = 1e6  # largest / smallest non-zero per-parameter gradient norm


# Said when memorised() holds for an untrained model: a check it passes proves nothing.
VACUOUS = (
    "memorised() holds before any training step: it asks too little of the model (a "
    "greedy choice right by chance, positions the inputs do not determine, a loose "
    "threshold); make it fail for an untrained model"
)


def overfit_budget(cfg, n: int) -> int:
    """Steps allowed to memorise ``n`` examples: the config's checks.overfit_<n>
    (configs/schema.py: ChecksConfig), 30 per example for a size it has no key for."""
    return int(cfg.checks.get(f"overfit_{n}", 30 * n))


def fit_fixed_batch(model, batch, cfg, max_steps: int, check_every: int = 10, zero_inputs=False):
    """Train on one fixed batch with the project's optimiser at a constant LR.
    Returns (steps until ``loss.memorised`` holds or None, loss per step); 0 steps
    means memorised() held before training (VACUOUS), which no check counts.

    ``zero_inputs``: the model sees zeroed inputs (data_checks.zeroed, conditions
    kept), while memorised() is still given the true batch: what it judges (which
    targets the inputs determine) comes from the real inputs, so a blind model
    cannot meet it by making every position look undetermined."""
    players = optimisers(model, cfg, players_of)
    blind = None
    if zero_inputs:  # data_checks.zero_inputs' hook, removed after
        blind = model.register_forward_pre_hook(
            lambda module, args: (data_checks.zeroed(args[0]), *args[1:])
        )
    losses = []
    try:
        for step in range(max_steps + 1):
            if step % check_every == 0:
                model.eval()
                if memorised(model, batch):
                    return step, losses
            model.train()
            losses.append(step_players(model, players, batch, cfg.loss))
    finally:
        if blind is not None:
            blind.remove()
    return None, losses


def overfit_hint(losses: list[float]) -> str:
    """What a failed overfit run's loss curve says (Karpathy's recipe, FSDL)."""
    if not losses:
        return "no training step was taken"
    first, last = losses[0], losses[-1]
    if not math.isfinite(last):
        return "the loss became non-finite: exp/log/division numerics, or LR far too high"
    tail = losses[-max(2, len(losses) // 10) :]
    if sum(tail) / len(tail) > first:
        return "rising loss: a sign flip in the loss, or LR too high"
    drop = first - min(losses)
    still_falling = (tail[0] - tail[-1]) > 0.01 * drop
    # Below zero and still falling, or fallen to a thousand times its start (where
    # float32 stops it: a flipped ELBO reaches -1e20): either way, no minimum.
    unbounded = still_falling or abs(last) > 1e3 * max(abs(first), 1.0)
    if last < 0 and unbounded and drop > abs(first):
        return (
            f"the loss falls without bound ({first:.3g} -> {last:.3g}, below zero and still "
            "falling): a sign flip (the loss maximises what it should minimise), or a term "
            "with no minimum"
        )
    if drop <= 0.1 * abs(first):
        return (
            "plateau from the start: LR too low, or gradients not reaching some layers "
            "(see gradient flow)"
        )
    # Near zero (98% of a positive start gone), or no longer moving: the optimiser
    # found the loss's minimum, and it is not what memorised() asks for.
    if (first > 0 and last <= 0.02 * first) or not still_falling:
        return (
            f"the loss fell to {last:.3g} (from {first:.3g}) yet memorised() fails: "
            "the loss optimises another target than memorised()/metrics_fn check "
            "(another key, shifted or mis-paired targets, another output), or memorised's "
            "tolerance is out of reach of this loss"
        )
    return (
        f"the loss still falls ({first:.3g} -> {last:.3g}): a higher LR or more steps; "
        "if it is slow from the start, see gradient flow and init statistics"
    )


def gradient_problems(model, batch, loss_cfg) -> list[str]:
    """Parameters whose gradient is missing, non-finite or all zero (empty: fine).
    Stronger than "parameters changed after a step": AdamW's weight decay moves
    parameters even when their gradient is zero (a detached branch, say)."""
    problems = []
    for player in players_of(model):  # each parameter in its own player's step
        model.zero_grad(set_to_none=True)
        player.loss(model, batch, loss_cfg).backward()
        for name, param in player.named:
            if param.grad is None:
                problems.append(f"{name}: no gradient (not in the graph?)")
            elif not torch.isfinite(param.grad).all():
                problems.append(f"{name}: non-finite gradient")
            elif param.grad.abs().sum() == 0:
                problems.append(f"{name}: all-zero gradient")
    return problems


def output_tensors(outputs) -> list[torch.Tensor]:
    """A model may return one tensor or a dict of them (e.g. logits, mu, logvar)."""
    return list(outputs.values()) if isinstance(outputs, dict) else [outputs]


def like_outputs(outputs, tensors: list[torch.Tensor]):
    """The inverse of ``output_tensors``: the same structure around new tensors."""
    return dict(zip(outputs, tensors, strict=True)) if isinstance(outputs, dict) else tensors[0]


def loss_gradcheck(model, batch, loss_cfg, directions: int = 3, eps: float = 1e-6) -> bool:
    """Autograd against finite differences for the loss, in float64, on two examples:
    catches a loss whose hand-written backward path (a custom reduction) is wrong.

    Along random directions u of the model's outputs x, autograd's directional
    derivative <dL/dx, u> must equal the central difference
    (L(x + eps u) - L(x - eps u)) / (2 eps). A wrong gradient misses it for almost
    every u. This is torch.autograd.gradcheck's fast mode written out: two loss
    evaluations per direction however large the outputs (a vocabulary, an image),
    and without the ~0.4 s import gradcheck does on its first call.

    With players, each player's loss is checked along directions of its own
    parameters instead (players_gradcheck): its loss is a function of the model."""
    if getattr(paper_loss, "PLAYERS", None) is not None:
        return players_gradcheck(model, batch, loss_cfg, directions, eps)
    small = map_tensors(lambda tensor: tensor[:2], batch)
    with torch.no_grad():
        outputs = model(small["inputs"])
    x = [t.double().requires_grad_(True) for t in output_tensors(outputs)]
    # Float targets (pixels, returns, float inputs) in float64 too, so the loss runs
    # in float64; integer ones (labels, time steps) stay as they are.
    targets = map_tensors(lambda t: t.double() if t.is_floating_point() else t, small)

    (player,) = players_of(model)  # loss_fn on the outputs

    def loss_at(tensors):  # the loss of the outputs ``tensors`` in place of the model's
        return player.loss(lambda inputs: like_outputs(outputs, tensors), targets, loss_cfg)

    # An output the loss does not use has no gradient (None): zero along every u.
    grads = torch.autograd.grad(loss_at(x), x, allow_unused=True)
    generator = torch.Generator().manual_seed(0)
    for _ in range(directions):
        u = [torch.randn(t.shape, generator=generator, dtype=t.dtype).to(t.device) for t in x]
        pairs = list(zip(x, u, strict=True))
        by_autograd = sum(
            float((g * d).sum()) for g, d in zip(grads, u, strict=True) if g is not None
        )
        with torch.no_grad():
            plus = loss_at([t + eps * d for t, d in pairs])
            minus = loss_at([t - eps * d for t, d in pairs])
        by_differences = float(plus - minus) / (2 * eps)
        # gradcheck's own tolerances (atol 1e-5, rtol 1e-3).
        if abs(by_differences - by_autograd) > 1e-5 + 1e-3 * abs(by_differences):
            return False
    return True


def players_gradcheck(model, batch, loss_cfg, directions: int = 3, eps: float = 1e-6) -> bool:
    """For each player, in float64 on a copy of the model and four examples:
    autograd's directional derivative of its loss along random directions u of its
    parameters against (L(theta + eps u) - L(theta - eps u)) / (2 eps). The loss's
    own random draws (a GAN's noise) are the same at every evaluation."""
    model = copy.deepcopy(model).double()
    small = map_tensors(lambda t: t[:4].double() if t.is_floating_point() else t[:4], batch)
    generator = torch.Generator().manual_seed(0)
    for player in players_of(model):
        params = [p for _, p in player.named]

        def loss_at(player=player) -> torch.Tensor:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                return player.loss(model, small, loss_cfg)

        grads = torch.autograd.grad(loss_at(), params, allow_unused=True)
        for _ in range(directions):
            u = [
                torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device)
                for p in params
            ]
            by_autograd = sum(
                float((g * d).sum()) for g, d in zip(grads, u, strict=True) if g is not None
            )
            # A ReLU's kink between theta - h u and theta + h u spoils the difference
            # at that step h; a wrong gradient misses at every step.
            steps = (eps, eps / 100)
            by_differences = (central_difference(loss_at, params, u, h) for h in steps)
            if not any(abs(d - by_autograd) <= 1e-5 + 1e-3 * abs(d) for d in by_differences):
                return False
    return True


def central_difference(loss_at, params: list, u: list, h: float) -> float:
    """(L(theta + h u) - L(theta - h u)) / (2 h), the parameters put back after."""
    with torch.no_grad():
        torch._foreach_add_(params, u, alpha=h)
        plus = float(loss_at())
        torch._foreach_add_(params, u, alpha=-2 * h)
        minus = float(loss_at())
        torch._foreach_add_(params, u, alpha=h)
    return (plus - minus) / (2 * h)


def init_statistics(model, batch, loss_cfg) -> dict:
    """Per layer with weights: output std and share of units never positive over
    the batch (dead after a ReLU); and the spread of per-parameter gradient norms."""
    stats, hooks = {}, []

    def record(name):
        def hook(module, args, output):
            if isinstance(output, torch.Tensor) and output.is_floating_point():
                flat = output.detach().float().flatten(0, -2) if output.dim() > 1 else output
                if isinstance(module, nn.modules.conv._ConvNd):  # units are channels
                    flat = output.detach().transpose(0, 1).flatten(1).T
                dead = (flat <= 0).all(dim=0).float().mean().item()
                # Largest std of one unit across examples (and positions): ~0 means
                # the layer gives every example the same output, its input is constant.
                varies = flat.std(dim=0).max().item() if len(flat) > 1 else math.inf
                stats[name] = {
                    "std": flat.std().item(),
                    "dead": dead,
                    "varies": varies,
                    "units": flat.size(-1),
                }

        return hook

    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.modules.conv._ConvNd, nn.Embedding)):
            hooks.append(module.register_forward_hook(record(name)))
    norms = {}
    try:
        for player in players_of(model):  # each parameter's gradient from its own loss
            model.zero_grad(set_to_none=True)
            player.loss(model, batch, loss_cfg).backward()
            norms.update({n: p.grad.norm().item() for n, p in player.named if p.grad is not None})
    finally:
        for hook in hooks:
            hook.remove()
    nonzero = {n: v for n, v in norms.items() if v > 0}
    spread = max(nonzero.values()) / min(nonzero.values()) if nonzero else math.inf
    extremes = (min(nonzero, key=nonzero.get), max(nonzero, key=nonzero.get)) if nonzero else ()
    return {"layers": stats, "grad_spread": spread, "grad_extremes": extremes}


def init_problems(stats: dict) -> list[tuple[str, str]]:
    """(what, what it usually means) for each part of the init statistics that
    fails, naming the layer or parameter."""
    low, high = ACTIVATION_STD_RANGE
    problems = []
    # Layers in the order they ran: after one fed a constant, the next are constant
    # too; name the first, which is where the bug is.
    constant = [n for n, s in stats["layers"].items() if s["varies"] <= 1e-6 * max(1.0, s["std"])]
    if constant:
        after = f" (and {len(constant) - 1} layer(s) after it)" if len(constant) > 1 else ""
        problems.append(
            (
                f"{constant[0]}: the same output for every example{after}",
                f"{constant[0]} is fed a constant (a timestep or condition embedding given "
                "one value for all, an input zeroed or detached before it)",
            )
        )
    for name, s in stats["layers"].items():
        if name in constant:
            pass
        elif s["std"] < low:
            problems.append(
                (
                    f"{name}: activation std {s['std']:.2g}",
                    f"{name}'s output is nearly zero: its init scale is too small for the "
                    "depth (use fan-in scaling), or its input is",
                )
            )
        if s["std"] > high:
            problems.append(
                (
                    f"{name}: activation std {s['std']:.3g}",
                    f"{name}'s init scale is too large for its fan-in (use fan-in scaling)",
                )
            )
        # A layer of a few units (an output head: two actions' logits, a value) says
        # nothing by its signs: all of them negative on a batch is chance at init.
        if s["dead"] > DEAD_UNIT_LIMIT and s["units"] >= DEAD_UNIT_MIN_WIDTH:
            problems.append(
                (
                    f"{name}: {s['dead']:.0%} of units never positive",
                    f"units after {name} are dead for this batch: negative biases or "
                    "pre-activations shifted below zero (ReLU); check its init and inputs",
                )
            )
    if stats["grad_spread"] > GRAD_SPREAD_LIMIT:
        small, large = stats["grad_extremes"] or ("?", "?")
        problems.append(
            (
                f"gradient-norm spread {stats['grad_spread']:.3g} ({small} to {large})",
                f"{small} barely learns next to {large}: vanishing gradients on the way, "
                "or a branch scaled down",
            )
        )
    return problems


def lr_range(model, batches, cfg, start=1e-6, end=1.0, steps=100) -> tuple[list, list]:
    """Loss (smoothed) while the LR grows exponentially from ``start`` to ``end``,
    one step per batch, no warm-up or decay; stops once the loss has blown up."""
    players = optimisers(model, cfg, players_of)
    lrs, losses, smooth = [], [], None
    for i in range(steps):
        lr = start * (end / start) ** (i / (steps - 1))
        model.train()
        value = step_players(model, players, next(batches), cfg.loss, lr=lr)
        if not math.isfinite(value):
            break
        smooth = value if smooth is None else 0.8 * smooth + 0.2 * value
        lrs.append(lr)
        losses.append(smooth)
        if smooth > 4 * min(losses) and smooth > losses[0]:
            break
    return lrs, losses
