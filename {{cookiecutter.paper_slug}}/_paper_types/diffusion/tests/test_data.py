"""Data (phase 1): sizes, pixels on the 17 grey levels in [-1, 1], seeded splits."""

from __future__ import annotations

import math

import pytest
import torch

from {{ cookiecutter.package_name }}.data import (
    SPLITS,
    build_splits,
    level_posterior_mean,
    load_images,
    read_digits,
)


def test_split_sizes_shapes_and_dtypes(splits, data_spec):
    assert sum(len(splits[name]["x0"]) for name in SPLITS) == len(load_images())
    for split in splits.values():
        assert split["x0"].dtype == split["inputs"]["x_t"].dtype == torch.float32
        assert split["x0"].shape[1] == data_spec["num_pixels"]
        assert split["inputs"]["t"].dtype == torch.int64


def test_pixels_are_the_17_levels_scaled_to_minus_one_one():
    raw = torch.tensor(read_digits()[0], dtype=torch.float64)
    images = load_images()
    # 0 -> -1, 8 -> 0, 16 -> 1: the levels 1/8 apart that the bound's decoder bins.
    assert torch.allclose(images.double(), raw / 8 - 1)
    assert images.min() == -1 and images.max() == 1
    assert len(images.unique()) == 17


def test_splits_partition_the_images(splits):
    # Every image in exactly one split: the splits' rows, sorted, are all images.
    def sorted_rows(x: torch.Tensor) -> list:
        return sorted(map(tuple, x.tolist()))

    together = torch.cat([splits[name]["x0"] for name in SPLITS])
    assert sorted_rows(together) == sorted_rows(load_images())


def test_same_seed_same_splits_and_evaluation_noise_other_seed_other_splits(cfg, splits):
    again = build_splits(cfg.data)
    for name in SPLITS:
        assert torch.equal(again[name]["x0"], splits[name]["x0"])
        # The fixed t and eps of evaluation: the same validation number every time.
        assert torch.equal(again[name]["inputs"]["t"], splits[name]["inputs"]["t"])
        assert torch.equal(again[name]["noise"], splits[name]["noise"])
    other_cfg = cfg.data.copy()
    other_cfg.seed = cfg.data.seed + 1
    assert not torch.equal(build_splits(other_cfg)["test"]["x0"], splits["test"]["x0"])


def test_level_posterior_mean_is_bayes_rule_by_hand():
    """Three levels -1, 0, 1 with prior 0.2, 0.5, 0.3; abar = 0.64, so x_t = 0.8 x0 +
    0.6 eps. At x_t = 0.3 each level's weight is prior * exp(-(0.3 - 0.8 v)^2 / 0.72).
    A likelihood without the sqrt(abar) on the level, a variance of std instead of
    std^2, or the prior's logits dropped, gives another mean."""
    prior = [0.2, 0.5, 0.3]
    weights = [
        p * math.exp(-((0.3 - 0.8 * v) ** 2) / (2 * 0.36))
        for p, v in zip(prior, (-1, 0, 1), strict=True)
    ]
    expected = (weights[2] - weights[0]) / sum(weights)
    logits = torch.tensor(prior).log().reshape(1, 1, 3)
    mean = level_posterior_mean(
        torch.tensor([[0.3]]), torch.tensor([0]), torch.tensor([0.64]), logits
    )
    assert mean.item() == pytest.approx(expected, rel=1e-5)
    # Noise far finer than the levels' gap: the mean is the nearest level, whatever the prior.
    fine = torch.tensor([1 - 1e-6], dtype=torch.float64)
    x_t = torch.tensor([[0.46, -0.52, 0.98]]) * math.sqrt(fine.item())
    flat = torch.zeros(1, 3, 17)
    rounded = level_posterior_mean(x_t, torch.tensor([0]), fine, flat)
    assert torch.allclose(rounded, torch.tensor([[0.5, -0.5, 1.0]]), atol=1e-6)
