"""Data (phase 1): evaluation seeds held out, training batches well formed, the
counts the iterator logs."""

from __future__ import annotations

import torch

from {{ cookiecutter.package_name }}.data import (
    TRAIN_SEED_RANGE,
    train_batches,
)


def test_evaluation_splits_hold_disjoint_seeds_never_drawn_for_training(cfg, splits, model):
    val, test = splits["val"]["seed"], splits["test"]["seed"]
    assert len(val) == cfg.data.val_episodes and len(test) == cfg.data.test_episodes
    assert not set(val.tolist()) & set(test.tolist())
    assert min(val.min(), test.min()) >= TRAIN_SEED_RANGE
    # ... and training really draws below that range: record the seeds of the
    # training episodes' resets (a draw from a wider range, e.g. [0, 2**31), would
    # put nearly all of them above it).
    data_cfg = cfg.data.copy()
    data_cfg.learning_starts = 500  # warm-up steps: many episodes, many resets
    data_cfg.memory_size = max(data_cfg.memory_size, 500)
    batches = train_batches(data_cfg, None, 16, torch.Generator().manual_seed(0), model)
    drawn = []
    reset = batches.env.reset

    def recording_reset(*, seed=None, **kwargs):
        drawn.append(seed)
        return reset(seed=seed, **kwargs)

    batches.env.reset = recording_reset
    next(batches)
    assert len(drawn) > 10 and max(drawn) < TRAIN_SEED_RANGE


def test_training_batch_shapes_and_dtypes(batch, data_spec):
    b = len(batch["inputs"])
    assert batch["inputs"].shape == (b, data_spec["obs_dim"])
    assert batch["inputs"].dtype == torch.float32
    assert batch["actions"].shape == (b,) and batch["actions"].dtype == torch.long
    assert batch["actions"].min() >= 0 and batch["actions"].max() < data_spec["num_actions"]
    assert batch["targets"].shape == (b,) and torch.isfinite(batch["targets"]).all()


def test_env_steps_and_grad_steps_are_counted_apart(cfg, model):
    # After the warm-up, each batch (one gradient step) is train_every env steps.
    batches = train_batches(cfg.data, None, 16, torch.Generator().manual_seed(0), model)
    for _ in range(3):
        next(batches)
    report = batches.scalars()
    assert report["grad_steps"] == 3
    assert report["env_steps"] == cfg.data.learning_starts + 3 * cfg.data.train_every
    assert report["memory_size"] == report["env_steps"]  # far from full
    assert report["episodes"] > 0 and report["episode_return"] > 0
    assert "episode_return" not in batches.scalars()  # a window: emptied by each report
