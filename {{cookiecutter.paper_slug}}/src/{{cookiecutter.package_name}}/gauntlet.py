"""The debugging gauntlet: the sanity checks of the method, run on the real code.

    python -m {{ cookiecutter.package_name }}.gauntlet
    python -m {{ cookiecutter.package_name }}.gauntlet model.n_layers=4 optim.lr=1e-3
    python -m {{ cookiecutter.package_name }}.gauntlet --sizes 1 10 --out runs/gauntlet/mine

Arguments are the same overrides train.py takes. Each check builds a fresh model
from the config and uses the project's own data, model, loss and optimiser:

    overfit N       memorise N examples (1, 10, 100): steps needed
    gradient flow   every parameter gets a finite, non-zero gradient
    gradcheck       autograd matches finite differences for the loss (float64)
    loss at init    the untrained loss matches what a uniform guess gives
    init statistics activation std per layer, dead units, gradient-norm spread
    batches finite  the real training batches (data_checks.py): no NaN or inf
    batches detached  no batch tensor carries a graph (targets made by a network)
    batch layout    keys, shapes and dtypes as data.batch_layout(spec) says
    duplicate rows  rows repeated within a batch no more than chance allows
    resume          a save/load of the data stream draws the same next batches
    split preprocessing  val/test statistics close to the training batches'
    input baseline  with inputs zeroed the model must do clearly worse (a dict of
                    inputs: its float tensors zeroed, integer conditions such as a
                    time step or a label kept)
    input baseline on val  a short run on real batches beats its blind twin on val
    LR range        loss on a fixed batch while the LR grows from 1e-6 to 1 (Smith 2017)

A check that cannot apply says "n/a" and why (split preprocessing when the splits
share no feature with the training batches, as RL's seeds; the LR range when the
training batches depend on the model, as on-policy rollouts or bootstrapped targets).

It prints a pass/fail table with the numbers and, for each failure, what it
usually means given what was measured; writes gauntlet.md, gauntlet.json,
overfit.png and lr_range.png to its run directory; and exits non-zero when any
check fails. The tests use the same
functions (tests/test_overfit.py, tests/test_gradients.py), so what passes here is
what CI checks.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from . import data_checks
from .data import batch_layout, build_splits, overfit_batch, spec, train_batches
from .loss import expected_loss_at_init, loss_fn, memorised
from .model import build_model
from .optim import build_optimizer
from .runtime import map_tensors, named_tensors, pick_device

OVERFIT_BUDGET = {1: 200, 10: 600, 100: 3000}  # steps allowed per batch size
INIT_TOLERANCE = 0.05  # |loss at init - expected|, in the loss's own units
DEAD_UNIT_LIMIT = 0.5  # a layer with more than this share of never-positive units fails
ACTIVATION_STD_RANGE = (1e-3, 1e2)  # per-layer output std at init
GRAD_SPREAD_LIMIT = 1e6  # largest / smallest non-zero per-parameter gradient norm


@dataclass
class Check:
    name: str
    passed: bool
    measured: str
    expected: str
    hint: str  # what a failure usually means, given what was measured
    applies: bool = True  # False: "n/a", ``measured`` says why; it fails nothing


def data_check(name: str, verdict, expected: str, hint: str) -> Check:
    """A row from one of data_checks' verdicts."""
    return Check(name, verdict.passed, verdict.measured, expected, hint, verdict.applies)


# --- The checks, also used by the tests -------------------------------------------


def fit_fixed_batch(model, batch, cfg, max_steps: int, check_every: int = 10, zero_inputs=False):
    """Train on one fixed batch with the project's optimiser at a constant LR.
    Returns (steps until ``loss.memorised`` holds or None, loss per step)."""
    optimizer = build_optimizer(model, cfg.optim)
    # Zeroed as the input baseline zeroes them (data_checks.zeroed: conditions kept).
    inputs = data_checks.zeroed(batch["inputs"]) if zero_inputs else batch["inputs"]
    losses = []
    for step in range(max_steps + 1):
        if step % check_every == 0:
            model.eval()
            if memorised(model, {**batch, "inputs": inputs}):
                return step, losses
        model.train()
        loss = loss_fn(model(inputs), batch, cfg.loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
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
    if last < 0 and still_falling and drop > abs(first):
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
    model.zero_grad(set_to_none=True)
    loss_fn(model(batch["inputs"]), batch, loss_cfg).backward()
    problems = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
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
    and without the ~0.4 s import gradcheck does on its first call."""
    small = map_tensors(lambda tensor: tensor[:2], batch)
    with torch.no_grad():
        outputs = model(small["inputs"])
    x = [t.double().requires_grad_(True) for t in output_tensors(outputs)]
    # Float targets (pixels, returns, float inputs) in float64 too, so the loss runs
    # in float64; integer ones (labels, time steps) stay as they are.
    targets = map_tensors(lambda t: t.double() if t.is_floating_point() else t, small)

    def loss_at(tensors):
        return loss_fn(like_outputs(outputs, tensors), targets, loss_cfg)

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
                stats[name] = {"std": flat.std().item(), "dead": dead, "varies": varies}

        return hook

    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.modules.conv._ConvNd, nn.Embedding)):
            hooks.append(module.register_forward_hook(record(name)))
    model.zero_grad(set_to_none=True)
    try:
        loss_fn(model(batch["inputs"]), batch, loss_cfg).backward()
    finally:
        for hook in hooks:
            hook.remove()
    norms = {n: p.grad.norm().item() for n, p in model.named_parameters() if p.grad is not None}
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
        if s["dead"] > DEAD_UNIT_LIMIT:
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
    optimizer = build_optimizer(model, cfg.optim)
    lrs, losses, smooth = [], [], None
    for i in range(steps):
        lr = start * (end / start) ** (i / (steps - 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = next(batches)
        model.train()
        loss = loss_fn(model(batch["inputs"]), batch, cfg.loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item()
        if not math.isfinite(value):
            break
        smooth = value if smooth is None else 0.8 * smooth + 0.2 * value
        lrs.append(lr)
        losses.append(smooth)
        if smooth > 4 * min(losses) and smooth > losses[0]:
            break
    return lrs, losses


# --- Running them all -------------------------------------------------------------


class Setup:
    """What every check starts from: the config, the device, the data, and fresh
    models initialised from the config's seed."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.device = pick_device(cfg.device)
        self.data_spec = spec(cfg.data)
        self.splits = build_splits(cfg.data)  # on the CPU, as the data checks read them
        self.train = map_tensors(lambda tensor: tensor.to(self.device), self.splits["train"])

    def model(self, seed: int | None = None) -> nn.Module:
        torch.manual_seed(self.cfg.seed if seed is None else seed)
        return build_model(self.cfg.model, self.data_spec).to(self.device)

    def training_batch(self, n: int, model) -> dict:
        """A batch of ``n`` exactly as the training loop draws it (data.train_batches)."""
        generator = torch.Generator().manual_seed(self.cfg.seed)
        return next(train_batches(self.cfg.data, self.train, n, generator, model))

    def probe(self, n: int, model) -> dict:
        """``n`` examples to memorise (data.overfit_batch), the same for every check."""
        generator = torch.Generator().manual_seed(self.cfg.seed)
        batch = overfit_batch(self.cfg.data, self.train, n, generator, model)
        return map_tensors(lambda tensor: tensor.to(self.device), batch)


def run_gauntlet(
    cfg,
    out_dir: Path,
    sizes=(1, 10, 100),
    skip=frozenset(),
    baseline_steps: int | None = None,
    plots: bool = True,
) -> list[Check]:
    """All checks (but the overfit sizes not in ``sizes`` and the checks named in
    ``skip``: "input baseline", "input baseline on val", "LR range", the ones that
    train longest, and "data path", the rows of data_checks). ``baseline_steps``:
    steps of each "input baseline on val" run (default: data_checks.baseline_steps,
    a tenth of the configured run). ``plots``: draw overfit.png and lr_range.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    setup = Setup(cfg)
    checks, curves = overfit_checks(setup, sizes)
    checks += probe_checks(setup)
    if "data path" not in skip:
        checks += data_path_checks(setup)
    if "input baseline" not in skip:
        checks.append(input_baseline_check(setup))
    if "input baseline on val" not in skip:
        steps = baseline_steps or data_checks.baseline_steps(cfg)
        val = map_tensors(lambda tensor: tensor.to(setup.device), setup.splits["val"])
        verdict = data_checks.input_baseline(cfg, setup.model, setup.train, val, steps)
        checks.append(
            data_check(
                "input baseline on val",
                verdict,
                f"real inputs better after {steps} steps",
                "the model learns nothing from its inputs on real data that it does not learn "
                "without them: the input path is detached or unused, the targets do not "
                "depend on the inputs (a TD target that bootstraps through terminal states "
                "or from a network never synced carries no information about the state), "
                "or the run is too short (--baseline-steps)",
            )
        )
    lrs, losses = [], []
    if "LR range" not in skip:
        check, lrs, losses = lr_range_check(setup)
        checks.append(check)

    if plots:
        draw_plots(out_dir, curves, lrs, losses)
    (out_dir / "gauntlet.md").write_text(format_report(checks))
    (out_dir / "gauntlet.json").write_text(json.dumps([asdict(c) for c in checks], indent=2))
    return checks


def draw_plots(out_dir: Path, curves: dict, lrs: list, losses: list) -> None:
    """overfit.png (the loss curve of each overfit check) and lr_range.png."""
    from .plots import plot_lines  # matplotlib, only now

    if curves:
        plot_lines(curves, "step", "training loss on the fixed batch", out_dir / "overfit.png")
    if losses:
        plot_lines(
            {"smoothed loss": losses}, "learning rate", "loss", out_dir / "lr_range.png", x=lrs
        )


def overfit_checks(setup: Setup, sizes) -> tuple[list[Check], dict[str, list[float]]]:
    """Memorise n examples, for each n in ``sizes``; also the loss curves to plot."""
    checks, curves = [], {}
    for n in sizes:
        budget = OVERFIT_BUDGET.get(n, 30 * n)
        model = setup.model()
        steps, losses = fit_fixed_batch(model, setup.probe(n, model), setup.cfg, budget)
        curves[f"{n} examples"] = losses
        checks.append(
            Check(
                f"overfit {n}",
                steps is not None,
                f"memorised in {steps} steps"
                if steps is not None
                else f"not memorised; loss {losses[-1]:.4g}",
                f"memorised within {budget} steps",
                overfit_hint(losses),
            )
        )
    return checks, curves


def probe_checks(setup: Setup) -> list[Check]:
    """Gradient flow, gradcheck, loss at init and init statistics on one batch of 16
    as training draws it (the tests' ``draw_batch`` too). Not on a probe: probes
    are chosen to be memorisable (one time step, bandit states), and a layer that
    is dead or constant on a probe may be alive on what training feeds it, and the
    other way round."""
    cfg = setup.cfg
    model = setup.model()
    batch = setup.training_batch(16, model)
    problems = gradient_problems(model, batch, cfg.loss)
    passed = loss_gradcheck(model, batch, cfg.loss)
    model.eval()
    with torch.no_grad():
        measured = loss_fn(model(batch["inputs"]), batch, cfg.loss).item()
    expected = expected_loss_at_init(setup.data_spec, batch, cfg.loss)
    return [
        Check(
            "gradient flow",
            not problems,
            "; ".join(problems[:3]) or "all parameters",
            "finite, non-zero gradient for every parameter",
            "no gradient: the parameter is not used or its branch is detached; zero: a "
            "dead path (dead ReLUs, a zero-initialised layer in front of it)",
        ),
        Check(
            "gradcheck",
            passed,
            "autograd = finite differences" if passed else "autograd != finite differences",
            "match in float64",
            "a non-differentiable step in the loss (argmax, rounding, in-place edits) "
            "or a custom backward that is wrong",
        ),
        Check(
            "loss at init",
            abs(measured - expected) <= INIT_TOLERANCE,
            f"{measured:.4f}",
            f"{expected:.4f} +- {INIT_TOLERANCE}",
            "far above: over-confident initial outputs (init scale too large); far "
            "below: the targets leak into the inputs",
        ),
        init_statistics_check(setup.model(), batch, cfg.loss),
    ]


def init_statistics_check(model, batch, loss_cfg) -> Check:
    stats = init_statistics(model, batch, loss_cfg)
    stds = {name: s["std"] for name, s in stats["layers"].items()}
    dead = {name: s["dead"] for name, s in stats["layers"].items()}
    low, high = ACTIVATION_STD_RANGE
    worst_dead = max(dead, key=dead.get) if dead else "-"
    problems = init_problems(stats)
    return Check(
        "init statistics",
        not problems,
        "; ".join(what for what, _ in problems[:3])
        or f"activation std {min(stds.values()):.3g}..{max(stds.values()):.3g}; "
        f"dead units up to {dead.get(worst_dead, 0):.0%} ({worst_dead}); "
        f"gradient-norm spread {stats['grad_spread']:.3g}",
        f"std in [{low:g}, {high:g}] and varying across examples, "
        f"dead <= {DEAD_UNIT_LIMIT:.0%}, spread <= {GRAD_SPREAD_LIMIT:g}",
        "; ".join(why for _, why in problems[:3]),
    )


def data_path_checks(setup: Setup) -> list[Check]:
    """The real data path: consecutive batches as train.py draws them (data_checks.py)."""
    model = setup.model()
    drawn = data_checks.draw_training_batches(setup.cfg, setup.train, model)
    return [
        data_check(
            "batches finite",
            data_checks.finite(drawn.batches),
            "every float value finite",
            "NaN or inf in the data itself: a log of 0, a division by a zero std, a missing "
            "value in the source; the loss will be NaN from the first step",
        ),
        data_check(
            "batches detached",
            data_checks.detached(drawn.batches),
            "no batch tensor requires grad",
            "targets computed with a network (TD targets, bootstrapped returns, a teacher) "
            "keep its graph: the loss then trains the target too; torch.no_grad() or .detach()",
        ),
        data_check(
            "batch layout",
            data_checks.layout(drawn.batches, batch_layout(setup.data_spec)),
            "as data.batch_layout(spec)",
            "the loss gets other shapes or dtypes than it was written for ([B] against "
            "[B, 1] broadcasts silently to [B, B]), or batch_layout is out of date",
        ),
        data_check(
            "duplicate rows",
            data_checks.duplicates(drawn.batches, setup.train),
            "within-batch repeats at chance level",
            "the sampler repeats examples within a batch (one index for the whole batch, "
            "indices drawn from too small a range): each step trains on fewer examples",
        ),
        data_check(
            "resume",
            data_checks.resume(setup.cfg, setup.train, model, drawn),
            "same batches after a save/load",
            "the data stream keeps state its state_dict() does not save (an epoch "
            "position, a buffer), or draws randomness from outside its generator: a "
            "resumed run trains on other data (see runtime.ShuffledBatches)",
        ),
        data_check(
            "split preprocessing",
            data_checks.split_statistics(drawn.batches, setup.splits),
            "val/test statistics within chance of the training batches'",
            "val or test preprocessed differently from training (not normalised, another "
            "scale or vocabulary, or preprocessing done in train_batches only)",
        ),
    ]


def one_condition(batch: dict) -> dict:
    """``batch`` with the inputs that zeroing keeps (integer conditions next to
    float inputs: a time step, a label; data_checks.zeroed) set to the first
    example's, for every example. Zeroed inputs are then identical inputs, which
    cannot fit distinct targets; with a distinct t per example, a model that never
    looks at x_t could memorise the probes from t alone."""
    inputs = batch["inputs"]
    if isinstance(inputs, torch.Tensor):
        return batch
    if not any(t.is_floating_point() for t in named_tensors(inputs).values()):
        return batch  # all integer (tokens): zeroing replaces them all

    def first(t: torch.Tensor) -> torch.Tensor:
        return t if t.is_floating_point() else t[:1].expand_as(t).clone()

    return {**batch, "inputs": map_tensors(first, inputs)}


def input_baseline_check(setup: Setup) -> Check:
    """Memorise 10 probe examples with real inputs, then try with zeroed ones."""
    real_model, zero_model = setup.model(), setup.model()
    probe = one_condition(setup.probe(10, real_model))
    budget = OVERFIT_BUDGET[10]
    real_steps, real_losses = fit_fixed_batch(real_model, probe, setup.cfg, budget)
    if real_steps is None:  # nothing to compare with (the overfit rows say more)
        passed = False
        measured = f"real inputs not memorised in {budget} steps (loss {real_losses[-1]:.4g})"
    else:
        # Identical (zero) inputs give identical outputs, which cannot fit distinct
        # targets in any number of steps: twice what the real inputs needed is
        # proof enough, where the whole budget would always run to its end.
        zero_budget = max(2 * real_steps, 10)
        zero_steps, zero_losses = fit_fixed_batch(
            zero_model, probe, setup.cfg, zero_budget, zero_inputs=True
        )
        passed = zero_steps is None
        measured = f"real inputs memorised in {real_steps} steps; zeroed inputs " + (
            f"in {zero_steps}"
            if zero_steps is not None
            else f"not in {zero_budget} (loss {zero_losses[-1]:.4g})"
        )
    return Check(
        "input baseline",
        passed,
        measured,
        "real inputs memorised, zeroed inputs not in twice those steps",
        "zeroed inputs doing as well: the model ignores its input (or the targets are "
        "in it); real inputs failing too: see overfit, and if the overfit rows pass, the "
        "probe given the first example's integer inputs (one_condition) is no longer "
        "made of examples (x_t noised at another t): draw overfit_batch at one condition",
    )


def lr_range_check(setup: Setup) -> tuple[Check, list, list]:
    """The LR range test on one fixed batch of the training batch size (a probe),
    with its curve; n/a when training batches change with the model's weights
    (on-policy rollouts, bootstrapped targets): no fixed batch stands for them."""
    cfg = setup.cfg
    moving = data_checks.model_dependence(cfg, setup.train, setup.model)
    if moving is not None:
        reason = (
            f"n/a: {moving}: a loss on a fixed batch does not follow training's; use "
            "the LR sweep (-m sweep=lr) on the headline metric"
        )
        return Check("LR range", True, reason, "-", "", applies=False), [], []
    model = setup.model()
    lrs, losses = lr_range(model, itertools.repeat(setup.probe(cfg.trainer.batch_size, model)), cfg)
    best = min(range(len(losses)), key=losses.__getitem__) if losses else 0
    check = Check(
        "LR range",
        bool(losses) and losses[best] < 0.9 * losses[0],
        f"lowest loss {losses[best]:.4g} at lr {lrs[best]:.2g} (start {losses[0]:.4g}); "
        f"configured optim.lr = {cfg.optim.lr:g}"
        if losses
        else "loss not finite from the first step",
        "loss falls by 10% somewhere in 1e-6..1",
        "no LR lowers the loss: a sign flip, a detached graph or broken data",
    )
    return check, lrs, losses


def format_report(checks: list[Check]) -> str:
    lines = ["| check | result | measured | expected |", "|---|---|---|---|"]
    for c in checks:
        result = "n/a" if not c.applies else "pass" if c.passed else "FAIL"
        lines.append(f"| {c.name} | {result} | {c.measured} | {c.expected} |")
    failures = [c for c in checks if not c.passed]
    if failures:
        lines += ["", "What the failures usually mean:"]
        lines += [f"- {c.name}: {c.hint}" for c in failures]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    from hydra.errors import ConfigCompositionException

    from .schema import compose_config

    parser = argparse.ArgumentParser(description="Run the debugging gauntlet.")
    parser.add_argument("overrides", nargs="*", help="config overrides, as for train.py")
    parser.add_argument("--sizes", nargs="+", type=int, default=[1, 10, 100])
    parser.add_argument("--out", type=Path, default=None, help="default: runs/gauntlet/<time>")
    parser.add_argument(
        "--baseline-steps",
        type=int,
        default=None,
        help="steps of the input-baseline runs on real batches (default: a tenth of the run)",
    )
    args = parser.parse_args(argv)
    try:
        cfg = compose_config(*args.overrides)
    except ConfigCompositionException as err:
        # Hydra's message and its cause ("Key 'lrr' not in 'OptimConfig'") on one line.
        reason = " ".join(f"{err} {err.__cause__ or ''}".split())
        sys.exit(f"error: {reason}")
    out = args.out or Path("runs/gauntlet") / time.strftime("%Y-%m-%d_%H-%M-%S")
    checks = run_gauntlet(cfg, out, sizes=tuple(args.sizes), baseline_steps=args.baseline_steps)
    print(format_report(checks), end="")
    print(f"\nreport and plots: {out}")
    if not all(c.passed for c in checks):
        sys.exit(1)


if __name__ == "__main__":
    main()
