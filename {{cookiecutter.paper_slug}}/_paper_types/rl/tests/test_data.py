"""Data (phase 1): evaluation seeds held out, training batches well formed."""

from __future__ import annotations

import torch

from {{ cookiecutter.package_name }}.data import (
    TRAIN_SEED_RANGE,
)


def test_evaluation_seeds_are_disjoint_and_never_drawn_for_training(cfg, splits):
    val, test = splits["val"]["seed"], splits["test"]["seed"]
    assert len(val) == cfg.data.val_episodes and len(test) == cfg.data.test_episodes
    assert not set(val.tolist()) & set(test.tolist())
    assert min(val.min(), test.min()) >= TRAIN_SEED_RANGE


def test_training_batch_shapes_and_dtypes(batch, data_spec):
    t = len(batch["inputs"])
    assert batch["inputs"].shape == (t, data_spec["obs_dim"])
    assert batch["inputs"].dtype == torch.float32
    assert batch["actions"].shape == (t,) and batch["actions"].dtype == torch.long
    assert batch["actions"].min() >= 0 and batch["actions"].max() < data_spec["num_actions"]
    for name in ("returns", "advantages"):
        assert batch[name].shape == (t,) and torch.isfinite(batch[name]).all()
