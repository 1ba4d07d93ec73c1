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
    input baseline  with inputs zeroed the model must do clearly worse
    LR range        loss on a fixed batch while the LR grows from 1e-6 to 1 (Smith 2017)

It prints a pass/fail table with the numbers and, for each failure, what it
usually means; writes gauntlet.md, gauntlet.json, overfit.png and lr_range.png to
its run directory; and exits non-zero when any check fails. The tests use the same
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

from .data import build_splits, overfit_batch, spec
from .loss import expected_loss_at_init, loss_fn, memorised
from .model import build_model
from .optim import build_optimizer
from .runtime import pick_device

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
    hint: str  # what a failure usually means


# --- The checks, also used by the tests -------------------------------------------


def fit_fixed_batch(model, batch, cfg, max_steps: int, check_every: int = 10, zero_inputs=False):
    """Train on one fixed batch with the project's optimiser at a constant LR.
    Returns (steps until ``loss.memorised`` holds or None, loss per step)."""
    optimizer = build_optimizer(model, cfg.optim)
    inputs = torch.zeros_like(batch["inputs"]) if zero_inputs else batch["inputs"]
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
    small = {name: tensor[:2] for name, tensor in batch.items()}
    with torch.no_grad():
        outputs = model(small["inputs"])
    x = [t.double().requires_grad_(True) for t in output_tensors(outputs)]
    # Float targets (pixels, returns) in float64 too, so the loss runs in float64.
    targets = {name: t.double() if t.is_floating_point() else t for name, t in small.items()}

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
                stats[name] = {"std": flat.std().item(), "dead": dead}

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
    norms = [p.grad.norm().item() for p in model.parameters() if p.grad is not None]
    nonzero = [n for n in norms if n > 0]
    spread = max(nonzero) / min(nonzero) if nonzero else math.inf
    return {"layers": stats, "grad_spread": spread}


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


def run_gauntlet(cfg, out_dir: Path, sizes=(1, 10, 100), skip=frozenset()) -> list[Check]:
    """All checks (but the overfit sizes not in ``sizes`` and the checks named in
    ``skip``: "input baseline", "LR range", the two that train longest)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    device = pick_device(cfg.device)
    data_spec = spec(cfg.data)
    train_split = {k: v.to(device) for k, v in build_splits(cfg.data)["train"].items()}

    def fresh_model():
        torch.manual_seed(cfg.seed)
        return build_model(cfg.model, data_spec).to(device)

    def draw(n, model):
        generator = torch.Generator().manual_seed(cfg.seed)
        batch = overfit_batch(cfg.data, train_split, n, generator, model)
        return {k: v.to(device) for k, v in batch.items()}

    checks, curves = [], {}
    for n in sizes:
        budget = OVERFIT_BUDGET.get(n, 30 * n)
        model = fresh_model()
        steps, losses = fit_fixed_batch(model, draw(n, model), cfg, budget)
        curves[f"{n} examples"] = losses
        checks.append(
            Check(
                f"overfit {n}",
                steps is not None,
                f"memorised in {steps} steps"
                if steps is not None
                else f"not memorised; loss {losses[-1]:.4g}",
                f"memorised within {budget} steps",
                "rising loss: sign flip or LR too high; plateau: LR too low or gradients "
                "not reaching some layers (see gradient flow)",
            )
        )

    model = fresh_model()
    batch = draw(16, model)
    problems = gradient_problems(model, batch, cfg.loss)
    checks.append(
        Check(
            "gradient flow",
            not problems,
            "; ".join(problems[:3]) or "all parameters",
            "finite, non-zero gradient for every parameter",
            "no gradient: the parameter is not used or its branch is detached; zero: a "
            "dead path (dead ReLUs, a zero-initialised layer in front of it)",
        )
    )
    passed = loss_gradcheck(model, batch, cfg.loss)
    checks.append(
        Check(
            "gradcheck",
            passed,
            "autograd = finite differences" if passed else "autograd != finite differences",
            "match in float64",
            "a non-differentiable step in the loss (argmax, rounding, in-place edits) "
            "or a custom backward that is wrong",
        )
    )

    model.eval()
    with torch.no_grad():
        measured = loss_fn(model(batch["inputs"]), batch, cfg.loss).item()
    expected = expected_loss_at_init(data_spec, batch, cfg.loss)
    checks.append(
        Check(
            "loss at init",
            abs(measured - expected) <= INIT_TOLERANCE,
            f"{measured:.4f}",
            f"{expected:.4f} +- {INIT_TOLERANCE}",
            "far above: over-confident initial outputs (init scale too large); far "
            "below: the targets leak into the inputs",
        )
    )

    stats = init_statistics(fresh_model(), batch, cfg.loss)
    stds = {name: s["std"] for name, s in stats["layers"].items()}
    dead = {name: s["dead"] for name, s in stats["layers"].items()}
    low, high = ACTIVATION_STD_RANGE
    worst_dead = max(dead, key=dead.get) if dead else "-"
    ok = (
        all(low <= s <= high for s in stds.values())
        and all(d <= DEAD_UNIT_LIMIT for d in dead.values())
        and stats["grad_spread"] <= GRAD_SPREAD_LIMIT
    )
    checks.append(
        Check(
            "init statistics",
            ok,
            f"activation std {min(stds.values()):.3g}..{max(stds.values()):.3g}; "
            f"dead units up to {dead.get(worst_dead, 0):.0%} ({worst_dead}); "
            f"gradient-norm spread {stats['grad_spread']:.3g}",
            f"std in [{low:g}, {high:g}], dead <= {DEAD_UNIT_LIMIT:.0%}, "
            f"spread <= {GRAD_SPREAD_LIMIT:g}",
            "std too small or large: init scale wrong for the depth (use fan-in scaling); "
            "dead units: ReLU biases or LR too negative; huge spread: some layers barely learn",
        )
    )

    if "input baseline" not in skip:
        real_model, zero_model = fresh_model(), fresh_model()
        probe = draw(10, real_model)
        budget = OVERFIT_BUDGET[10]
        real_steps, real_losses = fit_fixed_batch(real_model, probe, cfg, budget)
        if real_steps is None:  # nothing to compare with (the overfit rows say more)
            passed = False
            measured = f"real inputs not memorised in {budget} steps (loss {real_losses[-1]:.4g})"
        else:
            # Identical (zero) inputs give identical outputs, which cannot fit distinct
            # targets in any number of steps: twice what the real inputs needed is
            # proof enough, where the whole budget would always run to its end.
            zero_budget = max(2 * real_steps, 10)
            zero_steps, zero_losses = fit_fixed_batch(
                zero_model, probe, cfg, zero_budget, zero_inputs=True
            )
            passed = zero_steps is None
            measured = f"real inputs memorised in {real_steps} steps; zeroed inputs " + (
                f"in {zero_steps}"
                if zero_steps is not None
                else f"not in {zero_budget} (loss {zero_losses[-1]:.4g})"
            )
        checks.append(
            Check(
                "input baseline",
                passed,
                measured,
                "real inputs memorised, zeroed inputs not in twice those steps",
                "zeroed inputs doing as well: the model ignores its input (or the targets are "
                "in it); real inputs failing too: see overfit",
            )
        )

    lrs, losses = [], []
    if "LR range" not in skip:
        # On one fixed batch of the training batch size: the overfit probes make this
        # meaningful for every paper type (an RL loss on fresh episodes rises as the
        # policy improves, because the episodes get longer).
        model = fresh_model()
        lrs, losses = lr_range(model, itertools.repeat(draw(cfg.trainer.batch_size, model)), cfg)
        best = min(range(len(losses)), key=losses.__getitem__) if losses else 0
        learned = bool(losses) and losses[best] < 0.9 * losses[0]
        checks.append(
            Check(
                "LR range",
                learned,
                f"lowest loss {losses[best]:.4g} at lr {lrs[best]:.2g} (start {losses[0]:.4g}); "
                f"configured optim.lr = {cfg.optim.lr:g}"
                if losses
                else "loss not finite from the first step",
                "loss falls by 10% somewhere in 1e-6..1",
                "no LR lowers the loss: a sign flip, a detached graph or broken data",
            )
        )

    from .plots import plot_lines  # matplotlib, only now

    if curves:
        plot_lines(curves, "step", "training loss on the fixed batch", out_dir / "overfit.png")
    if losses:
        plot_lines(
            {"smoothed loss": losses}, "learning rate", "loss", out_dir / "lr_range.png", x=lrs
        )
    report = format_report(checks)
    (out_dir / "gauntlet.md").write_text(report)
    (out_dir / "gauntlet.json").write_text(json.dumps([asdict(c) for c in checks], indent=2))
    return checks


def format_report(checks: list[Check]) -> str:
    lines = ["| check | result | measured | expected |", "|---|---|---|---|"]
    for c in checks:
        lines.append(
            f"| {c.name} | {'pass' if c.passed else 'FAIL'} | {c.measured} | {c.expected} |"
        )
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
    args = parser.parse_args(argv)
    try:
        cfg = compose_config(*args.overrides)
    except ConfigCompositionException as err:
        # Hydra's message and its cause ("Key 'lrr' not in 'OptimConfig'") on one line.
        reason = " ".join(f"{err} {err.__cause__ or ''}".split())
        sys.exit(f"error: {reason}")
    out = args.out or Path("runs/gauntlet") / time.strftime("%Y-%m-%d_%H-%M-%S")
    checks = run_gauntlet(cfg, out, sizes=tuple(args.sizes))
    print(format_report(checks), end="")
    print(f"\nreport and plots: {out}")
    if not all(c.passed for c in checks):
        sys.exit(1)


if __name__ == "__main__":
    main()
