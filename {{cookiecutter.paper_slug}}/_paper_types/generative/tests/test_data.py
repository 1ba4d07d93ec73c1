"""Data (phase 1): shapes, binary pixels, determinism for a seed, disjoint splits."""

from __future__ import annotations

import torch

from {{ cookiecutter.package_name }}.data import (
    SPLITS,
    build_splits,
    load_binary_images,
)


def test_split_sizes_shapes_and_dtypes(splits, data_spec):
    assert sum(len(splits[name]["inputs"]) for name in SPLITS) == len(load_binary_images())
    for split in splits.values():
        assert split["inputs"].dtype == torch.float32
        assert split["inputs"].shape[1] == data_spec["num_pixels"]
        assert split["seed"].dtype == torch.long


def test_same_seed_same_splits_other_seed_other_splits(cfg, splits):
    again = build_splits(cfg.data)
    for name in SPLITS:
        assert torch.equal(again[name]["inputs"], splits[name]["inputs"])
    other_cfg = cfg.data.copy()
    other_cfg.seed = cfg.data.seed + 1
    assert not torch.equal(build_splits(other_cfg)["test"]["seed"], splits["test"]["seed"])


def test_splits_are_disjoint(splits):
    # The seed is the image's index in the full data set: no index twice.
    indices = torch.cat([splits[name]["seed"] for name in SPLITS])
    assert len(indices.unique()) == len(indices)
