"""A run that stops (crash, kill, pre-emption) and is resumed must end exactly
where an uninterrupted run ends, and a checkpoint must never be half-written."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import {{ cookiecutter.package_name }}.train as train_module
from {{ cookiecutter.package_name }}.engine.batches import (
    first,
)
from {{ cookiecutter.package_name }}.engine.ckpt import (
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)


class Crash(Exception):
    pass


def crash_at(monkeypatch, call: int) -> None:
    """Make the training loop's ``call``-th loss computation raise (a crash mid-run)."""
    real, calls = train_module.player_loss, []

    def player_loss(*args):
        calls.append(1)
        if len(calls) == call:
            raise Crash
        return real(*args)

    monkeypatch.setattr(train_module, "player_loss", player_loss)


def assert_same_weights(dir_a, dir_b) -> None:
    """The same weights (and weight average, when there is one) bit for bit."""
    a = load_checkpoint(dir_a / "checkpoints" / "last.pt")
    b = load_checkpoint(dir_b / "checkpoints" / "last.pt")
    for part in ("model", "ema"):
        assert (part in a) == (part in b)
        if part in a:
            assert a[part].keys() == b[part].keys()
            different = [name for name in a[part] if not torch.equal(a[part][name], b[part][name])]
            assert not different, f"resumed run differs from the whole one in {part} {different}"


def draw_from_every_random_state(monkeypatch) -> None:
    """Make training depend on every random state a checkpoint must restore, for any
    paper type: each loss is scaled by draws from Python's, NumPy's and PyTorch's
    global generators (as dropout or sampling would), and epochs last three
    batches, so the data generator reshuffles between checkpoint and crash."""
    real_loss, real_batches = train_module.player_loss, train_module.train_batches

    def player_loss(*args):  # every player's
        noise = random.random() + np.random.rand() + torch.rand(()).item()  # noqa: NPY002
        return real_loss(*args) * (1 + 0.01 * noise)

    def train_batches(cfg, split, batch_size, generator, model):
        short = first(split, 3 * batch_size)
        return real_batches(cfg, short, batch_size, generator, model)

    monkeypatch.setattr(train_module, "player_loss", player_loss)
    monkeypatch.setattr(train_module, "train_batches", train_batches)


# The default recipe, and one with every piece of state a recipe adds: a torch.optim
# optimiser's (RMSProp with momentum, centred), the weight average's, accumulation.
RECIPES = {
    "default": (),
    "rmsprop, ema, accumulation": ("optim=rmsprop", "optim.momentum=0.9", "optim.centered=true",
                                   "trainer.ema_decay=0.9", "trainer.grad_accum_steps=2"),
}  # fmt: skip


@pytest.mark.parametrize(
    "recipe",
    # The second builds a torch.optim class (imports torch._dynamo, ~1-2 s): slow suite.
    [pytest.param(name, marks=[pytest.mark.slow] if RECIPES[name] else []) for name in RECIPES],
)
def test_resumed_run_ends_bit_identical_to_an_uninterrupted_one(
    quick_cfg, tmp_path, monkeypatch, loss_calls, recipe
):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    # log_every=3: the running loss window is half full at the step-8 checkpoint.
    overrides = ("trainer.log_every=3", *RECIPES[recipe])
    draw_from_every_random_state(monkeypatch)
    train_module.train(quick_cfg(*overrides), whole)
    # Crash at step 11: the last checkpoint is from step 8, so steps 9-11 are redone
    # (and the step-9 log line written before the crash must not appear twice).
    crash_at(monkeypatch, 11 * len(loss_calls(quick_cfg(*overrides))))  # in step 11
    with pytest.raises(Crash):
        train_module.train(quick_cfg(*overrides), resumed)
    assert load_checkpoint(resumed / "checkpoints" / "last.pt")["step"] == 8
    monkeypatch.undo()
    draw_from_every_random_state(monkeypatch)
    train_module.train(quick_cfg(*overrides, "trainer.resume=true"), resumed)
    assert_same_weights(whole, resumed)
    # The log reads as if the run had never stopped: no duplicated or lost steps.
    assert (whole / "metrics.jsonl").read_text() == (resumed / "metrics.jsonl").read_text()


def test_resuming_a_finished_run_does_nothing(quick_cfg, quick_run, tmp_path, monkeypatch):
    shutil.copytree(quick_run, tmp_path, dirs_exist_ok=True)
    before = (tmp_path / "metrics.json").read_text()
    crash_at(monkeypatch, 1)  # any training step would now raise
    headline = train_module.train(quick_cfg("trainer.resume=true"), tmp_path)
    assert (tmp_path / "metrics.json").read_text() == before
    assert headline == json.loads(before)[f"val/{train_module.HEADLINE_METRIC}"]


def test_resume_refuses_a_changed_config(quick_cfg, tmp_path, monkeypatch, loss_calls):
    crash_at(monkeypatch, 6 * len(loss_calls(quick_cfg())))  # after step 4's save
    with pytest.raises(Crash):
        train_module.train(quick_cfg(), tmp_path)
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match=r"optim\.lr was 0\.\d+, now 0\.5"):
        train_module.train(quick_cfg("trainer.resume=true", "optim.lr=0.5"), tmp_path)


def test_best_checkpoint_holds_the_best_validation_metric(quick_run):
    records = [json.loads(line) for line in (quick_run / "metrics.jsonl").read_text().splitlines()]
    name = f"val/{train_module.HEADLINE_METRIC}"
    logged = [(r["step"], r[name]) for r in records if name in r and r["step"] > 0]
    pick = max if train_module.HEADLINE_MODE == "max" else min
    best_value = pick(value for _, value in logged)
    # The first evaluation that reached it: a tie is not an improvement.
    best_step = next(step for step, value in logged if value == best_value)
    best = load_checkpoint(quick_run / "checkpoints" / "best.pt")
    assert (best["step"], best["val"][train_module.HEADLINE_METRIC]) == (best_step, best_value)


@pytest.mark.slow  # a second process that imports torch
def test_a_kill_during_a_checkpoint_write_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"step": 1, "weights": torch.ones(1000)})
    # A child process starts writing step 2 and is killed halfway through the bytes.
    script = textwrap.dedent(
        """
        import os, signal, sys, torch
        from {{ cookiecutter.package_name }}.engine.ckpt import save_checkpoint
        real_save = torch.save
        def save_and_die(obj, f):
            real_save(obj, f)
            f.flush()
            f.truncate(f.tell() // 2)
            os.kill(os.getpid(), signal.SIGKILL)
        torch.save = save_and_die
        save_checkpoint(sys.argv[1], dict(step=2, weights=torch.zeros(1000)))
        """
    )
    command = [sys.executable, "-c", script, str(path)]
    result = subprocess.run(command, capture_output=True, timeout=120)
    assert result.returncode == -signal.SIGKILL
    state = load_checkpoint(path)
    assert state["step"] == 1 and torch.equal(state["weights"], torch.ones(1000))
    # The half-written temporary file is what a kill leaves; it is never read.
    with pytest.raises(CheckpointError, match="could not be read"):
        load_checkpoint(tmp_path / "last.pt.tmp")


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2], ids=["in-process", "two-data-workers"])
def test_sigkill_then_the_same_command_with_resume_matches_an_uninterrupted_run(
    tmp_path, run_train_command, cfg, workers
):
    """The real thing: the command line, a SIGKILL at a random-ish step, a restart.
    The run that is killed is a process of its own; the uninterrupted run and the
    restart run in this process (conftest.run_train_command). The tiny experiment:
    what is tested is the command line and the checkpoint, not the model.

    Where the data config has ``num_workers`` (splits read from files by DataLoader
    workers), again with two workers: they load batches ahead of the loop, which
    the kill throws away, and a small data set's epochs end within the run (the
    vision example's: every 20 steps, so the kill lands mid-epoch)."""
    from conftest import TEST_SCALE  # the scale every test runs at

    readers = []
    if workers:
        if "num_workers" not in cfg.data:
            pytest.skip("n/a: the data config has no num_workers: no DataLoader workers")
        readers = [f"data.num_workers={workers}"]

    def arguments(run_dir, *extra):
        return [
            *TEST_SCALE, "trainer.max_steps=40", "trainer.eval_every=5",
            "trainer.log_every=5", "trainer.tensorboard=false", "trainer.plot=false",
            f"hydra.run.dir={run_dir}", *readers, *extra,
        ]  # fmt: skip

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    run_train_command(*arguments(whole))
    command = [
        sys.executable,
        "-m",
        "{{ cookiecutter.package_name }}.train",
        *arguments(killed),
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as process:
        # Kill once the run has checkpointed at least twice: somewhere mid-run.
        for line in process.stdout:
            if b"step 15 |" in line:
                break
        os.kill(process.pid, signal.SIGKILL)
    # Leaving the with block closed the pipe and waited for the process to end.
    assert load_checkpoint(killed / "checkpoints" / "last.pt")["step"] < 40
    run_train_command(*arguments(killed, "trainer.resume=true"))
    assert_same_weights(whole, killed)
