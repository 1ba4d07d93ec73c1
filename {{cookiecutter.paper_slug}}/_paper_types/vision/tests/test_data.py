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


def test_each_image_keeps_the_label_of_its_raw_digit(cfg, splits, model):
    """Every image, in each split and in a training batch, carries the label that
    read_digits() gives the same raw digit. Normalisation is affine, so an image and
    its raw digit correlate exactly; a shuffle of labels against images (two
    permutations, a sort of one and not the other) keeps every statistic and would
    only show as a model that cannot learn."""
    from {{ cookiecutter.package_name }}.data import (
        read_digits,
        train_batches,
    )

    pixels, raw_labels = read_digits()

    def unit_rows(x):
        x = torch.as_tensor(x, dtype=torch.float64).reshape(len(x), -1)
        x = x - x.mean(dim=1, keepdim=True)
        return x / x.norm(dim=1, keepdim=True)

    raw, raw_labels = unit_rows(pixels), torch.as_tensor(raw_labels)
    data_cfg = cfg.data.copy()
    data_cfg.max_shift = 0  # the training path without augmentation: pixels comparable
    generator = torch.Generator().manual_seed(0)
    batch = next(train_batches(data_cfg, splits["train"], 256, generator, model))
    for name, examples in [*splits.items(), ("training batch", batch)]:
        same_digit = unit_rows(examples["inputs"]) @ raw.T > 1 - 1e-6  # [N, 1797]
        assert same_digit.any(dim=1).all(), f"{name}: an image that is no raw digit"
        # A raw image may occur twice; its label must be one of those digits'.
        labelled = same_digit & (raw_labels[None, :] == examples["targets"][:, None])
        wrong = int((~labelled.any(dim=1)).sum())
        assert wrong == 0, f"{name}: {wrong} images carry another digit's label"
