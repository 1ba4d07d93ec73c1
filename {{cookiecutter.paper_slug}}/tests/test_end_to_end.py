"""A short run through the command-line entry point: it writes metrics and a
checkpoint, and evaluating that checkpoint reproduces the validation metrics it logged.

The command runs in this process (conftest.run_train_command says why); the slow
tests and the template's own tests run it in a new process too.
"""

from __future__ import annotations

import json
import logging

import pytest
import torch
from omegaconf import OmegaConf

import {{ cookiecutter.package_name }}.eval as eval_module
import {{ cookiecutter.package_name }}.train as train_module
from {{ cookiecutter.package_name }}.data import (
    build_splits,
)
from {{ cookiecutter.package_name }}.engine.batches import (
    num_examples,
)
from {{ cookiecutter.package_name }}.engine.ckpt import (
    CheckpointError,
    load_checkpoint,
)
from {{ cookiecutter.package_name }}.eval import (
    evaluate_checkpoint,
)
from {{ cookiecutter.package_name }}.loss import (
    HEADLINE_METRIC,
)

STEPS = 20


def with_a_probe(split_metrics):
    """The paper type's split_metrics and one number more, to follow it into the
    outputs (it may return nothing of its own): the split's number of examples."""

    def probed(model, split, cfg):
        assert cfg.trainer.max_steps == STEPS  # the whole config, read as attributes
        return {**split_metrics(model, split, cfg), "probe_examples": num_examples(split)}

    return probed


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, run_train_command):
    run_dir = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(eval_module, "split_metrics", with_a_probe(eval_module.split_metrics))
        run_train_command(
            "experiment=tiny", f"trainer.max_steps={STEPS}", "trainer.eval_every=10",
            "trainer.log_every=5", "trainer.plot=false", f"hydra.run.dir={run_dir}",
        )  # fmt: skip
    return run_dir


# The training loss logged first: train/loss, or with loss.PLAYERS the first player's.
LOSS_KEY = (
    "train/loss"
    if train_module.PLAYERS is None
    else f"train/{next(iter(train_module.PLAYERS))}/loss"
)


def test_training_writes_metrics_and_checkpoint(run_dir):
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if LOSS_KEY in r] == [5, 10, 15, 20]
    headline = f"val/{HEADLINE_METRIC}"
    assert [r["step"] for r in records if headline in r] == [0, 10, 20]
    final = json.loads((run_dir / "metrics.json").read_text())
    assert final["step"] == STEPS
    # Training did something: the validation metrics moved from their values at init.
    at_init = next(r for r in records if headline in r)
    assert any(final[name] != value for name, value in at_init.items() if name != "step")
    # Plain data and tensors only: loadable without unpickling arbitrary objects.
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == STEPS
    assert state["config"]["trainer"]["max_steps"] == STEPS


def test_an_evaluation_before_the_first_logged_loss_shows_no_nan(quick_cfg, tmp_path, caplog):
    # eval_every < log_every: the first validation comes before any mean training loss.
    with caplog.at_level(logging.INFO):
        train_module.train(quick_cfg("trainer.eval_every=2", "trainer.log_every=4"), tmp_path)
    lines = {r.getMessage().split(" |")[0]: r.getMessage() for r in caplog.records}
    assert "| train loss - |" in lines["step 2"]  # not "nan", which reads like divergence
    assert "| train loss - |" not in lines["step 4"]  # a number once a window has closed


@pytest.mark.slow  # matplotlib: ~0.5 s to import, as long again to draw
def test_training_draws_its_curves(quick_cfg, tmp_path):
    train_module.train(quick_cfg("trainer.plot=true"), tmp_path)
    assert (tmp_path / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tensorboard_gets_the_same_scalars_when_installed(run_dir):
    pytest.importorskip("tensorboard", reason="optional: pip install -e '.[tensorboard]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    assert [s.step for s in events.Scalars(LOSS_KEY)] == [5, 10, 15, 20]
    assert [s.step for s in events.Scalars(f"val/{HEADLINE_METRIC}")] == [0, 10, 20]


def test_eval_reproduces_the_logged_validation_metrics(run_dir):
    final = json.loads((run_dir / "metrics.json").read_text())
    metrics = evaluate_checkpoint(run_dir / "checkpoints" / "last.pt", split="val", batch_size=77)
    for name, value in metrics.items():
        if name not in ("split", "step", "weights"):  # weights: "trained" or "ema"
            assert value == pytest.approx(final[f"val/{name}"], rel=1e-5, abs=1e-6), name


def test_split_level_metrics_reach_the_logs_and_eval(run_dir, monkeypatch):
    # loss.split_metrics, through training's validation (step 0 and every
    # evaluation) into metrics.jsonl and metrics.json as val/<name>, and through
    # eval.py into what eval_<split>.json holds, as <name>.
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    splits = build_splits(OmegaConf.create(state["config"]).data)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evaluations = [r for r in records if f"val/{HEADLINE_METRIC}" in r]
    assert [r.get("val/probe_examples") for r in evaluations] == [num_examples(splits["val"])] * 3
    final = json.loads((run_dir / "metrics.json").read_text())
    assert final["val/probe_examples"] == num_examples(splits["val"])
    monkeypatch.setattr(eval_module, "split_metrics", with_a_probe(eval_module.split_metrics))
    metrics = evaluate_checkpoint(run_dir / "checkpoints" / "last.pt", split="test")
    assert metrics["probe_examples"] == num_examples(splits["test"])


def test_a_damaged_checkpoint_gives_a_clear_error(run_dir, tmp_path):
    good = (run_dir / "checkpoints" / "last.pt").read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="could not be read"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(1)}, foreign)
    with pytest.raises(CheckpointError, match="was not written by this project"):
        load_checkpoint(foreign)
