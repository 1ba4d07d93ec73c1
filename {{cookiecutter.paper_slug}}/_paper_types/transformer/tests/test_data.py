"""Data (phase 1): shapes, dtypes, the task's rules, determinism, disjoint splits."""

from __future__ import annotations

import pytest
import torch

from {{ cookiecutter.package_name }}.data import (
    IGNORE,
    SPLITS,
    _distinct_rows,
    build_splits,
    separator,
)


def test_split_shapes_and_dtypes(cfg, splits, data_spec):
    sizes = {"train": cfg.data.num_train, "val": cfg.data.num_val, "test": cfg.data.num_test}
    length = 2 * cfg.data.seq_len
    assert set(splits) == set(SPLITS)
    for name, split in splits.items():
        assert split["inputs"].shape == (sizes[name], length)
        assert split["targets"].shape == (sizes[name], length)
        assert split["inputs"].dtype == split["targets"].dtype == torch.long
        assert split["inputs"].min() >= 0 and split["inputs"].max() < data_spec["vocab_size"]
    assert length <= data_spec["context_length"]


@pytest.mark.parametrize("name", ["train", "val", "test"])
def test_targets_are_the_reversed_sequence_and_nothing_else(cfg, splits, name):
    # Every split: evaluation encoded another way (a copy task, another separator)
    # would score the model on a task it was never trained for.
    inputs, targets = splits[name]["inputs"], splits[name]["targets"]
    L = cfg.data.seq_len
    source = inputs[:, :L]
    assert torch.all(inputs[:, L] == separator(cfg.data))
    # Only the answer half counts; it is the source read backwards.
    assert torch.all(targets[:, :L] == IGNORE)
    assert torch.equal(targets[:, L:], source.flip(1))
    # Next-token alignment: the model sees answer token k as input k+1 (teacher forcing).
    assert torch.equal(inputs[:, L + 1 :], targets[:, L:-1])


def test_same_seed_same_data_other_seed_other_data(cfg):
    again = build_splits(cfg.data)
    other_cfg = cfg.data.copy()
    other_cfg.seed = cfg.data.seed + 1
    other = build_splits(other_cfg)
    for name in SPLITS:
        assert torch.equal(again[name]["inputs"], build_splits(cfg.data)[name]["inputs"])
    assert not torch.equal(again["train"]["inputs"], other["train"]["inputs"])


@pytest.mark.parametrize(("base", "length"), [(3, 4), (10, 18), (16, 16)])
def test_distinct_rows_are_unique_over_rows(base, length):
    # The fast path reads rows as base-`base` numbers (10**18 still fits an int64);
    # 16**16 does not, and takes the slow path. Both must give torch.unique's rows
    # in its order: the splits, and so every reference number, depend on it.
    generator = torch.Generator().manual_seed(0)
    rows = torch.randint(base, (500, length), generator=generator)
    rows = torch.cat([rows, rows[:100]])  # duplicates to drop
    assert torch.equal(_distinct_rows(rows, base), torch.unique(rows, dim=0))


def test_splits_share_no_sequence(splits):
    # A test sequence seen in training would inflate held-out accuracy.
    seen = {}
    for name in SPLITS:
        for row in splits[name]["inputs"].tolist():
            key = tuple(row)
            assert key not in seen, f"a sequence is in both {seen[key]} and {name}"
            seen[key] = name


def test_training_batches_pair_each_sequence_with_its_own_reversal(cfg, draw_batch):
    # The split is right (above); this is the path training takes: a sampler that
    # indexed inputs and targets separately would keep every statistic and pair
    # each prompt with another sequence's answer.
    L = cfg.data.seq_len
    for seed in range(2):
        batch = draw_batch(cfg.trainer.batch_size, seed)
        paired = (batch["targets"][:, L:] == batch["inputs"][:, :L].flip(1)).all(dim=1)
        assert paired.all(), f"{int((~paired).sum())} rows answer another row's prompt"
