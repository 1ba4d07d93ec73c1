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


def test_each_example_is_the_binarised_digit_its_seed_names_and_the_loss_target(cfg, splits, model):
    """The pixels of every example, in each split and in a training batch, are the
    raw digit at index ``seed`` binarised (recomputed here from read_digits()), and
    the loss reconstructs exactly those pixels: outputs that predict them with
    certainty leave no reconstruction loss."""
    from {{ cookiecutter.package_name }}.data import (
        read_digits,
        train_batches,
    )
    from {{ cookiecutter.package_name }}.loss import (
        loss_fn,
    )

    binary = torch.as_tensor(read_digits()[0] >= 8, dtype=torch.float32)  # half of 16
    generator = torch.Generator().manual_seed(0)
    batch = next(train_batches(cfg.data, splits["train"], 64, generator, model))
    for name, examples in [*splits.items(), ("training batch", batch)]:
        wrong = int((examples["inputs"] != binary[examples["seed"]]).any(dim=1).sum())
        assert wrong == 0, f"{name}: {wrong} examples are not the digit their seed names"
    x = batch["inputs"]
    certain = {
        "logits": 40 * (2 * x - 1),  # p(pixel on) = sigmoid(+-40): the pixel itself
        "mu": torch.zeros(len(x), 2),  # posterior = prior: no KL either
        "logvar": torch.zeros(len(x), 2),
    }
    assert loss_fn(certain, batch, cfg.loss) < 1e-9
