"""Data (phase 1): shapes, dtypes, determinism for a seed, disjoint splits."""

from __future__ import annotations

import torch

from {{ cookiecutter.package_name }}.data import (
    SPLITS,
    build_splits,
    load_images,
)


def test_split_sizes_shapes_and_dtypes(cfg, splits, data_spec):
    n_total = len(load_images()[0])
    assert sum(len(splits[name]["targets"]) for name in SPLITS) == n_total
    c, s = data_spec["in_channels"], data_spec["image_size"]
    for split in splits.values():
        assert split["inputs"].shape[1:] == (c, s, s)
        assert split["inputs"].dtype == torch.float32
        assert split["targets"].dtype == torch.long
        assert set(split["targets"].unique().tolist()) == set(range(data_spec["num_classes"]))


def test_same_seed_same_splits_other_seed_other_splits(cfg, splits):
    again = build_splits(cfg.data)
    for name in SPLITS:
        assert torch.equal(again[name]["inputs"], splits[name]["inputs"])
        assert torch.equal(again[name]["targets"], splits[name]["targets"])
    other_cfg = cfg.data.copy()
    other_cfg.seed = cfg.data.seed + 1
    assert not torch.equal(build_splits(other_cfg)["test"]["targets"], splits["test"]["targets"])
