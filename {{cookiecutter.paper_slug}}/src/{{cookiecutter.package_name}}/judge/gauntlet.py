"""The debugging gauntlet: the sanity checks of the method, run on the real code.

    python -m {{ cookiecutter.package_name }}.judge.gauntlet
    python -m {{ cookiecutter.package_name }}.judge.gauntlet model.n_layers=4 optim.lr=1e-3
    python -m {{ cookiecutter.package_name }}.judge.gauntlet --sizes 1 10 --out runs/gauntlet/mine

Arguments are the same overrides train.py takes. Each check builds a fresh model
from the config and uses the project's own data, model, loss and optimiser:

    overfit N       memorise N examples (1, 10, 100): steps needed
    gradient flow   every parameter gets a finite, non-zero gradient
    gradcheck       autograd matches finite differences for the loss (float64)
    loss at init    the untrained loss matches what a uniform guess gives
    init statistics activation std per layer, dead units, gradient-norm spread
    causality       an autoregressive model (model.py defines generate): no output
                    depends on a later input, at every cut
    generation      generate() writes the forward pass's argmax, from short prompts too
    batches finite  the real training batches (data_checks.py): no NaN or inf
    batches detached  no batch tensor carries a graph (targets made by a network)
    batch layout    keys, shapes and dtypes as data.batch_layout(spec) says
    duplicate rows  rows repeated within a batch no more than chance allows
    resume          a save/load of the data stream draws the same next batches
    targets follow examples  each example's target is its source's (data.source_targets)
    evaluation fixed  val/test examples read twice are the same (no random transform)
    statistics from train  a standardisation's mean and std are the training split's
    split preprocessing  val/test statistics close to the training batches'
    input baseline  with inputs zeroed the model must do clearly worse (a dict of
                    inputs: its float tensors zeroed, integer conditions such as a
                    time step or a label kept)
    input baseline on val  a short run on real batches beats its blind twin on val
    too good to be true  that short run is no better than the paper's number after
                    its whole run (reference_numbers.yaml): leaked targets, a
                    mask that sees the future
    LR range        loss on a fixed batch while the LR grows from 1e-6 to 1 (Smith 2017)

A check that cannot apply says "n/a" and why (split preprocessing when the splits
share no feature with the training batches, as RL's seeds; the LR range when the
training batches depend on the model, as on-policy rollouts or bootstrapped targets).
A method declares the generic checks that cannot apply to it, and why, in loss.py
(NOT_APPLICABLE; judge/diagnostics.py: CHECKS): those rows say "n/a: <why>" and
do not run.

overfit N and the input baseline fail a batch that memorised() accepts before any
training step: a pass that proves nothing.

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
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import yaml
from torch import nn

from ..data import batch_layout, build_splits, overfit_batch, spec, train_batches
from ..engine.batches import map_tensors, named_tensors, on_device
from ..engine.runtime import pick_device, plain
from ..model import build_model
from . import data_checks
from .diagnostics import (
    ACTIVATION_STD_RANGE,
    DEAD_UNIT_LIMIT,
    GRAD_SPREAD_LIMIT,
    INIT_TOLERANCE,
    VACUOUS,
    causality_problems,
    fit_fixed_batch,
    generation_problems,
    gradient_problems,
    init_problems,
    init_statistics,
    loss_gradcheck,
    losses_at_init,
    lr_range,
    not_applicable,
    overfit_budget,
    overfit_hint,
)
from .player_steps import optimisers, step_players


@dataclass
class Check:
    name: str
    passed: bool
    measured: str
    expected: str
    hint: str  # what a failure usually means, given what was measured
    applies: bool = True  # False: "n/a", ``measured`` says why; it fails nothing
    value: float | None = None  # the number judged, where another row uses it


def declared(name: str, check: str | None = None) -> Check | None:
    """Row ``name`` as "n/a: <why>" when the method declares its generic check
    (``check``, by default the row's own name) not applicable in loss.py; else None."""
    reason = not_applicable(check or name)
    return None if reason is None else Check(name, True, f"n/a: {reason}", "-", "", applies=False)


def data_check(name: str, verdict, expected: str, hint: str) -> Check:
    """A row from one of data_checks' verdicts."""
    return Check(
        name, verdict.passed, verdict.measured, expected, hint, verdict.applies, verdict.value
    )


class Setup:
    """What every check starts from: the config, the device, the data, and fresh
    models initialised from the config's seed."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.device = pick_device(cfg.device)
        self.data_spec = spec(cfg.data)
        self.splits = build_splits(cfg.data)  # on the CPU, as the data checks read them
        self.train = on_device(self.splits["train"], self.device)

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
    notes = []
    if "data path" not in skip:
        checks += data_path_checks(setup)
        notes.append(data_wait(setup))
    if "input baseline" not in skip:
        checks.append(declared("input baseline") or input_baseline_check(setup))
    if "input baseline on val" not in skip:
        steps = baseline_steps or data_checks.baseline_steps(cfg)
        row = declared("input baseline on val", "input baseline")
        checks.append(row or input_baseline_on_val_check(setup, steps))
        # Judged on the same short run: no further training.
        row = declared("too good to be true")
        checks.append(row or too_good_check(setup, checks[-1], steps))
    lrs, losses = [], []
    if "LR range" not in skip:
        row = declared("LR range")
        check, lrs, losses = (row, [], []) if row else lr_range_check(setup)
        checks.append(check)

    if plots:
        draw_plots(out_dir, curves, lrs, losses)
    (out_dir / "gauntlet.md").write_text(format_report(checks, notes))
    (out_dir / "gauntlet.json").write_text(json.dumps([asdict(c) for c in checks], indent=2))
    return checks


def data_wait(setup: Setup, steps: int = 5) -> str:
    """How much of a training step would go to waiting for data: drawing a batch as
    train.py does against a training step on it (the project's optimiser, every
    player), ``steps`` of each after one of each to warm up (a replay memory's
    random steps, workers starting). A figure, not a check: an RL collector's
    rollouts are most of its step by design; benchmarks/bench.py measures the
    same share in a whole run."""
    cfg = setup.cfg
    model = setup.model()
    _, batches = data_checks.training_stream(cfg, setup.train, model)
    players, loss_cfg = optimisers(model, cfg), plain(cfg.loss)
    model.train()
    step_players(model, players, next(batches), loss_cfg)
    start = time.perf_counter()
    drawn = [next(batches) for _ in range(steps)]
    data_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for batch in drawn:
        step_players(model, players, batch, loss_cfg)  # .item() waits for the device
    step_seconds = time.perf_counter() - start
    share = data_seconds / max(data_seconds + step_seconds, 1e-12)
    return (
        f"data wait: drawing a training batch takes {1e3 * data_seconds / steps:.3g} ms, a "
        f"training step on it {1e3 * step_seconds / steps:.3g} ms: {share:.0%} of the loop's "
        "time would go to waiting for data (more DataLoader workers or batches held in "
        "memory lower it; benchmarks/bench.py measures it over a run)"
    )


def input_baseline_on_val_check(setup: Setup, steps: int) -> Check:
    """A short run on real batches against its blind twin, judged on val."""
    val = on_device(setup.splits["val"], setup.device)
    verdict = data_checks.input_baseline(setup.cfg, setup.model, setup.train, val, steps)
    return data_check(
        "input baseline on val",
        verdict,
        f"real inputs better after {steps} steps",
        "the model learns nothing from its inputs on real data that it does not learn "
        "without them: the input path is detached or unused, the targets do not "
        "depend on the inputs (a TD target that bootstraps through terminal states "
        "or from a network never synced carries no information about the state), "
        "or the run is too short (--baseline-steps)",
    )


def too_good_check(setup: Setup, short_run: Check, steps: int) -> Check:
    """The input baseline's short run held against the paper and its baselines."""
    from ..eval import headline_baselines  # imports Hydra; only here

    name = "too good to be true"
    if short_run.value is None:
        reason = f"n/a: no short run to judge ({short_run.name}: {short_run.measured})"
        return Check(name, True, reason, "-", "", applies=False)
    val = on_device(setup.splits["val"], setup.device)
    verdict = data_checks.too_good(
        short_run.value,
        steps,
        data_checks.paper_number(reference_claims()),
        headline_baselines(val, setup.cfg),
    )
    return data_check(
        name,
        verdict,
        "a tenth of the run no better than the paper's whole run",
        "a short run better than the paper's whole run: the targets are in the inputs "
        "(not shifted), a mask lets positions see the future (see causality), or val/test "
        "examples are in the training split; if the paper's number is wrong, fix "
        "reference_numbers.yaml",
    )


def reference_claims() -> list[dict]:
    """reference_numbers.yaml's claims: the project's (beside src/), else the
    working directory's; none when there is no such file."""
    project = Path(__file__).resolve().parents[3] / "reference_numbers.yaml"
    for path in (project, Path("reference_numbers.yaml")):
        if path.is_file():
            return yaml.safe_load(path.read_text()) or []
    return []


def draw_plots(out_dir: Path, curves: dict, lrs: list, losses: list) -> None:
    """overfit.png (the loss curve of each overfit check) and lr_range.png."""
    from ..engine.plots import plot_lines  # matplotlib, only now

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
        if row := declared(f"overfit {n}", "overfit"):
            checks.append(row)
            continue
        budget = overfit_budget(setup.cfg, n)
        model = setup.model()
        steps, losses = fit_fixed_batch(model, setup.probe(n, model), setup.cfg, budget)
        curves[f"{n} examples"] = losses
        if steps == 0:
            measured, hint = "memorised before any step", VACUOUS
        elif steps is None:
            measured, hint = f"not memorised; loss {losses[-1]:.4g}", overfit_hint(losses)
        else:
            measured, hint = f"memorised in {steps} steps", overfit_hint(losses)
        passed = bool(steps)  # None: not memorised; 0: vacuous
        checks.append(
            Check(f"overfit {n}", passed, measured, f"memorised within {budget} steps", hint)
        )
    return checks, curves


def probe_checks(setup: Setup) -> list[Check]:
    """Gradient flow, gradcheck, loss at init and init statistics on one batch of 16
    as training draws it (the tests' ``draw_batch`` too). Not on a probe: probes
    are chosen to be memorisable (one time step, bandit states), and a layer that
    is dead or constant on a probe may be alive on what training feeds it, and the
    other way round. A row the method declares not applicable is not run."""
    cfg = setup.cfg
    model = setup.model()
    batch = setup.training_batch(16, model)
    rows = {
        "gradient flow": lambda: gradient_flow_check(model, batch, cfg.loss),
        "gradcheck": lambda: gradcheck_check(model, batch, cfg.loss),
        "loss at init": lambda: loss_at_init_check(model, batch, setup),
        "init statistics": lambda: init_statistics_check(setup.model(), batch, cfg.loss),
        "causality": lambda: causality_check(model, batch["inputs"][:4]),
        "generation": lambda: generation_check(model, batch["inputs"][:4]),
    }
    return [declared(name) or make() for name, make in rows.items()]


def gradient_flow_check(model, batch, loss_cfg) -> Check:
    problems = gradient_problems(model, batch, loss_cfg)
    return Check(
        "gradient flow",
        not problems,
        "; ".join(problems[:3]) or "all parameters",
        "finite, non-zero gradient for every parameter",
        "no gradient: the parameter is not used or its branch is detached; zero: a "
        "dead path (dead ReLUs, a zero-initialised layer in front of it)",
    )


def gradcheck_check(model, batch, loss_cfg) -> Check:
    passed = loss_gradcheck(model, batch, loss_cfg)
    return Check(
        "gradcheck",
        passed,
        "autograd = finite differences" if passed else "autograd != finite differences",
        "match in float64",
        "a non-differentiable step in the loss (argmax, rounding, in-place edits) "
        "or a custom backward that is wrong",
    )


def causality_check(model, tokens) -> Check:
    problems = causality_problems(model, tokens)
    return Check(
        "causality",
        not problems,
        "; ".join(problems[:2]) or f"outputs unchanged at all {tokens.size(1) - 1} cuts",
        "no output depends on a later input",
        "the causal mask lets a position see the future (an off-by-one in the mask's "
        "diagonal), or positions are numbered from the end of the input",
    )


def generation_check(model, tokens) -> Check:
    half = tokens.size(1) // 2
    problems = generation_problems(model, tokens[:, :1], tokens.size(1) - 1)
    problems += generation_problems(model, tokens[:, :half], tokens.size(1) - half)
    return Check(
        "generation",
        not problems,
        "; ".join(problems[:2]) or "greedy tokens = the forward pass's argmax",
        "generate() writes what the forward pass predicts, from 1 and T/2 prompt tokens",
        "generate() scores another position than training (logits[:, 0] for [:, -1]), "
        "feeds a truncated or shifted context, or builds positions of its own",
    )


def loss_at_init_check(model, batch, setup: Setup) -> Check:
    measured, expected = losses_at_init(model, batch, setup.data_spec, setup.cfg.loss)
    off = {name: abs(measured[name] - expected[name]) for name in expected}
    return Check(
        "loss at init",
        all(d <= INIT_TOLERANCE for d in off.values()),
        ", ".join(f"{name or 'loss'} {v:.4f}" for name, v in measured.items()),
        ", ".join(f"{name or 'loss'} {v:.4f}" for name, v in expected.items())
        + f" +- {INIT_TOLERANCE}",
        "far above: over-confident initial outputs (init scale too large); far "
        "below: the targets leak into the inputs",
    )


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
            "resumed run trains on other data (see engine/batches.py: ShuffledBatches)",
        ),
        data_check(
            "targets follow examples",
            data_checks.targets_follow_examples(setup.cfg, setup.splits, drawn.batches),
            "every target as data.source_targets reads it",
            "the Dataset pairs examples with other examples' targets (a file list shuffled "
            "or sorted apart from its labels, a class-to-index map built per split)",
        ),
        data_check(
            "evaluation fixed",
            data_checks.evaluation_fixed(setup.splits),
            "val/test examples identical when read twice",
            "an augmentation (a random crop or flip, noise) applied to every split, or "
            "drawing from a global generator: apply it in train_batches (LoaderBatches' "
            "augment) only",
        ),
        data_check(
            "statistics from train",
            data_checks.statistics_from_train(setup.splits),
            "standardised exactly on train only",
            "the mean and std were computed on the test split, or on all the data: the "
            "evaluation data leaks into preprocessing (compute them on train only)",
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
    budget = overfit_budget(setup.cfg, 10)
    real_steps, real_losses = fit_fixed_batch(real_model, probe, setup.cfg, budget)
    if real_steps is None:  # nothing to compare with (the overfit rows say more)
        passed = False
        measured = f"real inputs not memorised in {budget} steps (loss {real_losses[-1]:.4g})"
    elif real_steps == 0:  # an untrained model "memorised" them: nothing was learnt
        passed = False
        measured = "real inputs memorised before any step: " + VACUOUS
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


def format_report(checks: list[Check], notes: list[str] = ()) -> str:
    lines = ["| check | result | measured | expected |", "|---|---|---|---|"]
    for c in checks:
        result = "n/a" if not c.applies else "pass" if c.passed else "FAIL"
        lines.append(f"| {c.name} | {result} | {c.measured} | {c.expected} |")
    failures = [c for c in checks if not c.passed]
    if failures:
        lines += ["", "What the failures usually mean:"]
        lines += [f"- {c.name}: {c.hint}" for c in failures]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    from hydra.errors import ConfigCompositionException

    from ..configs.schema import compose_config

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
    print((out / "gauntlet.md").read_text(), end="")
    print(f"\nreport and plots: {out}")
    if not all(c.passed for c in checks):
        sys.exit(1)


if __name__ == "__main__":
    main()
