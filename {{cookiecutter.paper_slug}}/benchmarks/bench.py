"""Does the project's structure cost speed? Figures as ratios, measured in one run.

    python benchmarks/bench.py               # every figure, 5 repeats each
    python benchmarks/bench.py --repeats 3 --skip tests

Prints each figure as the median over the repeats and exits non-zero when one
misses its target (a benchmark, not a test: the targets depend on the machine):

    loop efficiency   steps/s of train.train (logging, progress bar, checkpoints at
                      their defaults; validation time excluded) / steps/s of a
                      minimal hand-written loop over the same model, optimiser,
                      schedule and batches, on the example and on a small model
                      (experiment=tiny) where the fixed per-step cost
                      dominates                                      target >= 0.95
                      (and of the example's loop time, the share spent waiting
                      for batches: data_seconds in metrics.json)     reported
    start-up          `python -m <package>.train trainer.max_steps=1`
                      / `python -c "import torch"`                   target <= 1.5
                      (and the same over an import of torch with the
                      garbage collector frozen, as __init__.py does: what
                      Hydra, the config and the first step add; and with 2
                      steps and the end-of-run plot, which a 1-step run
                      does not draw)                                 reported
    test time         `pytest` (default) and `pytest -m "not checkpoints" -n auto`
                      (all but the CHECKPOINTS.md answers, the slow tests
                      included, a process per core, as the README runs them;
                      at most 3 repeats)
                      / `python -c "import torch"`                   target <= 6, <= 30
                      (and the same in one process, at most 2 repeats) reported
    GPU speed-ups     bf16 autocast and torch.compile vs float32 eager on the
                      example (only where CUDA is available)         reported

configs/experiment/tiny.yaml is the paper type's shrunk example.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from functools import cache
from pathlib import Path

import torch

import {{ cookiecutter.package_name }} as package
import {{ cookiecutter.package_name }}.loss as paper_loss
from {{ cookiecutter.package_name }}.configs.schema import (
    compose_config,
)
from {{ cookiecutter.package_name }}.data import (
    build_splits,
    spec,
    train_batches,
)
from {{ cookiecutter.package_name }}.engine.batches import (
    micro_batches,
    on_device,
)
from {{ cookiecutter.package_name }}.engine.optim import (
    build_optimizer,
    build_schedule,
    set_lr,
)
from {{ cookiecutter.package_name }}.engine.runtime import (
    Distributed,
    pick_device,
    pick_num_threads,
    plain,
    seed_everything,
)
from {{ cookiecutter.package_name }}.model import (
    build_model,
)
from {{ cookiecutter.package_name }}.train import (
    train,
)

ROOT = Path(__file__).resolve().parent.parent


def minimal_loop(cfg, steps: int) -> float:
    """The loop anyone would write by hand, with the same model, optimiser, LR
    schedule, clipping, gradient accumulation and batches as train.train. Returns
    steps (updates) per second. With loss.PLAYERS: ``minimal_players_loop``."""
    if getattr(paper_loss, "PLAYERS", None) is not None:
        return minimal_players_loop(cfg, steps)
    data, loss_cfg, optim = plain(cfg.data), plain(cfg.loss), plain(cfg.optim)
    torch.set_num_threads(cfg.trainer.num_threads)  # as train.train sets them
    generator = seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    split = on_device(build_splits(data)["train"], device)
    model = build_model(cfg.model, spec(data)).to(device)
    optimizer = build_optimizer(model, optim, device.type)
    schedule = build_schedule(cfg.schedule, steps)
    accumulate = cfg.trainer.grad_accum_steps
    batches = train_batches(data, split, cfg.trainer.batch_size, generator, model)
    # Warm-up (train.train's validation at step 0 does the same for its loop), with
    # a batch from another generator so the timed batches are the same as there.
    warm_up = torch.Generator().manual_seed(cfg.seed + 1)
    with torch.no_grad():
        model.eval()
        model(next(train_batches(data, split, cfg.trainer.batch_size, warm_up, model))["inputs"])
    model.train()
    start = time.perf_counter()
    for step in range(steps):
        batch = next(batches)
        optimizer.zero_grad(set_to_none=True)
        for part in micro_batches(batch, accumulate):
            loss = paper_loss.loss_fn(model(part["inputs"]), part, loss_cfg)
            (loss / accumulate if accumulate > 1 else loss).backward()
        if optim.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip)
        set_lr(optimizer, optim.lr * schedule(step))
        optimizer.step()
    _sync(device)
    return steps / (time.perf_counter() - start)


def minimal_players_loop(cfg, steps: int) -> float:
    """The same, written by hand for a paper with players (a GAN's Algorithm 1):
    per player its parameters (the submodule of its name), its own optimiser over
    them, and its steps per iteration, each on the next batch. Returns training
    steps (iterations) per second."""
    data, loss_cfg = plain(cfg.data), plain(cfg.loss)
    torch.set_num_threads(cfg.trainer.num_threads)
    generator = seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    split = on_device(build_splits(data)["train"], device)
    model = build_model(cfg.model, spec(data)).to(device)
    players = []
    for name, loss in paper_loss.PLAYERS.items():
        own = cfg.players.get(name)
        optim, sched = plain(cfg.optim), plain(cfg.schedule)
        for group, mine in ((optim, own and own.optim), (sched, own and own.schedule)):
            for key, value in plain(mine).__dict__.items() if mine else ():
                if value is not None:  # the player's own key in place of the group's
                    setattr(group, key, value)
        player_steps = own.steps if own else 1
        params = list(getattr(model, name).parameters())
        optimizer = build_optimizer(params, optim, device.type)
        schedule = build_schedule(sched, steps * player_steps)
        players.append((loss, params, optimizer, optim, schedule, player_steps))
    accumulate = cfg.trainer.grad_accum_steps
    batches = train_batches(data, split, cfg.trainer.batch_size, generator, model)
    start = time.perf_counter()
    for step in range(steps):
        for loss_of, params, optimizer, optim, schedule, player_steps in players:
            for k in range(player_steps):
                batch = next(batches)
                optimizer.zero_grad(set_to_none=True)
                for part in micro_batches(batch, accumulate):
                    loss = loss_of(model, part, loss_cfg)
                    (loss / accumulate if accumulate > 1 else loss).backward()
                if optim.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, optim.grad_clip)
                set_lr(optimizer, optim.lr * schedule(step * player_steps + k))
                optimizer.step()
    _sync(device)
    return steps / (time.perf_counter() - start)


def project_loop(cfg, steps: int) -> tuple[float, float]:
    """train.train as a user runs it; steps per second of the loop without the
    validation passes (their cost depends on the validation set, not the loop), and
    the share of that time spent waiting for batches (metrics.json: data_seconds)."""
    with tempfile.TemporaryDirectory() as run_dir:
        train(cfg, run_dir)
        final = json.loads((Path(run_dir) / "metrics.json").read_text())
    loop_seconds = final["train_seconds"] - final["eval_seconds"]
    return steps / loop_seconds, final["data_seconds"] / loop_seconds


@cache
def threads() -> list[str]:
    """Both loops run on the same number of CPU threads: what train.py's automatic
    choice gives when the benchmark starts (printed)."""
    count, why = pick_num_threads(None, Distributed())
    print(f"CPU threads for the loop timings: {count} ({why})")
    return [f"trainer.num_threads={count}"]


def steps_for(overrides: list[str], seconds: float) -> int:
    """Enough steps for the hand-written loop to run ``seconds``: every figure gets
    the same precision, whether a step takes 2 ms (a tiny model) or 150 ms (RL)."""
    probe = 20
    cfg = compose_config(
        *overrides, *threads(), f"trainer.max_steps={probe}", "trainer.tensorboard=false"
    )
    return max(probe, round(seconds * minimal_loop(cfg, probe)))


def loop_efficiency(overrides: list[str], seconds: float, repeats: int) -> tuple[float, float]:
    """Medians over repeats: project steps/s over hand-written steps/s, and the
    project loop's share of time waiting for data."""
    steps = steps_for(overrides, seconds)
    cfg = compose_config(
        *overrides, *threads(), f"trainer.max_steps={steps}", "trainer.tensorboard=false"
    )
    ratios, waits = [], []
    for repeat in range(repeats):
        # Interleaved, and in turn first, so drifts in machine load hit both alike.
        if repeat % 2:
            minimal = minimal_loop(cfg, steps)
            speed, wait = project_loop(cfg, steps)
        else:
            speed, wait = project_loop(cfg, steps)
            minimal = minimal_loop(cfg, steps)
        ratios.append(speed / minimal)
        waits.append(wait)
    return statistics.median(ratios), statistics.median(waits)


def wall_time(command: list[str], cwd: Path = ROOT) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=3600)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:  # a failing test suite is not a timing: show why
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return elapsed


IMPORT_TORCH = "import torch"
# What the package's __init__.py does: the same import without the garbage
# collector's passes over torch's objects (during the import and at shutdown).
IMPORT_TORCH_FROZEN = "import gc; gc.disable(); import torch; gc.freeze(); gc.enable()"


def over_torch_import(
    command: list[str], repeats: int, torch_times: list[float], baseline: str = IMPORT_TORCH
) -> float:
    """Median over repeats of wall(command) / wall(``python -c baseline``), the
    import timed just before and just after each run (their mean): drifts in machine
    load, which on a shared machine move both by 10-30%, then hit both alike. The
    import timings are appended to ``torch_times``."""
    import_torch = [sys.executable, "-c", baseline]
    ratios = []
    for _ in range(repeats):
        before = wall_time(import_torch)
        elapsed = wall_time(command)
        after = wall_time(import_torch)
        torch_times += [before, after]
        ratios.append(elapsed / ((before + after) / 2))
    return statistics.median(ratios)


def gpu_speedups(seconds: float, repeats: int) -> dict[str, float]:
    """Steps/s of bf16 autocast and torch.compile relative to float32 eager."""
    figures = {}
    steps = steps_for(["device=cuda"], seconds)
    base = ["trainer.tensorboard=false", f"trainer.max_steps={steps}", "device=cuda"]
    eager = statistics.median(project_loop(compose_config(*base), steps) for _ in range(repeats))
    for name, extra in [("bf16", ["trainer.precision=bf16"]), ("compile", ["trainer.compile=true"]),
                        ("bf16+compile", ["trainer.precision=bf16", "trainer.compile=true"])]:  # fmt: skip
        speed = statistics.median(
            project_loop(compose_config(*base, *extra), steps) for _ in range(repeats)
        )
        figures[f"speed-up {name}"] = speed / eager
    return figures


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def loop_rows(seconds: float, repeats: int) -> list[tuple]:
    """The loop's speed against a hand-written loop, for the example and its recipes."""
    rows = []
    loops = [
        ("example", []),
        ("tiny model", ["experiment=tiny"]),
        # The recipe's choices must not cost speed either.
        ("example, optim=sgd", ["optim=sgd"]),
        ("example, grad_accum_steps=2", ["trainer.grad_accum_steps=2"]),
    ]
    for label, overrides in loops:
        ratio, wait = loop_efficiency(overrides, seconds, repeats)
        rows.append((f"loop efficiency, {label}", ratio, ">= 0.95", ratio >= 0.95))
        if label == "example":  # a loop slowed by its data (a disk, an environment)
            rows.append(("data wait / loop time, example", wait, "reported", True))
    return rows


def startup_rows(repeats: int, torch_times: list[float]) -> list[tuple]:
    """A 1-step training command's wall time against `import torch`."""
    python, rows = sys.executable, []
    with tempfile.TemporaryDirectory() as run_dir:
        module = f"{package.__name__}.train"
        command = [python, "-m", module, "trainer.max_steps=1", f"hydra.run.dir={run_dir}"]
        ratio = over_torch_import(command, repeats, torch_times)
        # A third of `python -c "import torch"` is the garbage collector's, which
        # the package's __init__.py avoids: against the same import without it,
        # the figure shows what Hydra, the config and the first step add. (Its
        # import timings are not the reference row's: a throwaway list.)
        structural = over_torch_import(command, repeats, [], IMPORT_TORCH_FROZEN)
        # One logged loss draws no curve; two do: what a real run pays at its end.
        plotted = [*command[:3], "trainer.max_steps=2", "trainer.log_every=1", *command[4:]]
        with_plot = over_torch_import(plotted, repeats, torch_times)
    rows.append(("start-up / import torch", ratio, "<= 1.5", ratio <= 1.5))
    rows.append(("start-up / import torch, collector frozen", structural, "reported", True))
    rows.append(("2 steps + training_curves.png / import torch", with_plot, "reported", True))
    return rows


def test_rows(repeats: int, torch_times: list[float]) -> list[tuple]:
    """The test suites' wall times against `import torch`."""
    python, rows = sys.executable, []
    pytest = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    default = over_torch_import(pytest, repeats, torch_times)
    rows.append(("default tests / import torch", default, "<= 6", default <= 6))
    # The whole suite takes about a minute: at most 3 repeats. Most slow tests
    # wait on a Python of their own (a training command, a sweep, torchrun),
    # so the README runs them a process per core (pytest-xdist).
    whole = [*pytest, "-m", "not checkpoints"]
    parallel = [*whole, "-n", "auto"]
    everything = over_torch_import(parallel, min(repeats, 3), torch_times)
    rows.append(("all tests -n auto / import torch", everything, "<= 30", everything <= 30))
    serial = over_torch_import(whole, min(repeats, 2), torch_times)
    rows.append(("all tests, one process / import torch", serial, "reported", True))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmarks of the baked project.")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="length of each loop timing (sets the steps)"
    )
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["loop", "startup", "tests", "gpu"]
    )
    args = parser.parse_args()
    rows = []  # (figure, value, target description, passed)

    if "loop" not in args.skip:
        rows += loop_rows(args.seconds, args.repeats)
    torch_times: list[float] = []
    if "startup" not in args.skip:
        rows += startup_rows(args.repeats, torch_times)
    if "tests" not in args.skip:
        rows += test_rows(args.repeats, torch_times)
    if torch_times:
        rows.append(("import torch (s)", statistics.median(torch_times), "reference", True))
    if "gpu" not in args.skip:
        if torch.cuda.is_available():
            for name, value in gpu_speedups(args.seconds, args.repeats).items():
                rows.append((name, value, "reported", True))
        else:
            print("no CUDA device: GPU speed-ups not measured")

    print(f"\n| figure (median of {args.repeats}) | value | target | |")
    print("|---|---|---|---|")
    for name, value, target, passed in rows:
        print(f"| {name} | {value:.3f} | {target} | {'ok' if passed else 'MISSED'} |")
    if not all(passed for *_, passed in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
