"""Data: a synthetic sequence-reversal task for a decoder-only transformer.

Each example is one token sequence

    x_1 ... x_L  SEP  x_L ... x_1

The model reads it left to right and must predict the reversed half. Reversal is a
good smoke test for a transformer: it cannot be solved without attention (the answer
at step t lives L-t positions back) nor without positional information (a bag of
tokens does not say which one came last).

Splits are plain tensors held in memory. Training batches are taken by indexing a
shuffled permutation (see ``engine/batches.py``: ShuffledBatches), which is far cheaper than a
DataLoader collating one Python object per example.

Contract shared with the rest of the package (every paper type provides it):
- ``spec(cfg)`` -> dict of what the model needs to know: sizes, and any other
  values (floats such as a noise schedule's betas are fine).
- ``build_splits(cfg)`` -> {"train" | "val" | "test": {"inputs": Tensor, "targets": Tensor}}.
- ``train_batches(cfg, split, batch_size, generator, model)`` -> endless training
  batches; every per-batch random draw (augmentation, noise, a time step) comes
  from ``generator``, so that a resumed run draws the same.
- ``overfit_batch(cfg, split, n, generator, model)`` -> n examples to memorise.
- ``batch_layout(spec)`` -> per key of a training batch: shape and dtype.
A batch's "inputs" is what the model's forward receives: one tensor, or a dict of
tensors ({"x_t": ..., "t": ...}) when the model takes several.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import MISSING

from .engine.batches import ShuffledBatches

# Targets at positions that carry no answer are set to IGNORE so the loss skips them
# (the same sentinel value as F.cross_entropy's ignore_index default).
IGNORE = -100

SPLITS = ("train", "val", "test")


@dataclass
class DataConfig:
    """The keys of configs/data/*.yaml and their types (see configs/schema.py)."""

    num_symbols: int = MISSING
    seq_len: int = MISSING
    num_train: int = MISSING
    num_val: int = MISSING
    num_test: int = MISSING
    seed: int = MISSING


def spec(cfg) -> dict[str, int]:
    """Sizes derived from the data config that the model must agree with."""
    return {
        # Symbols 0..num_symbols-1, plus one separator token.
        "vocab_size": cfg.num_symbols + 1,
        # The model sees every token but the last (it only predicts from it).
        "context_length": 2 * cfg.seq_len,
    }


def separator(cfg) -> int:
    return cfg.num_symbols


def _unique_sequences(cfg, count: int) -> torch.Tensor:
    """Draw ``count`` distinct random sequences, in a seed-determined order."""
    generator = torch.Generator().manual_seed(cfg.seed)
    space = cfg.num_symbols**cfg.seq_len
    if count > space:
        raise ValueError(
            f"data asks for {count} distinct sequences but only {space} exist; "
            "lower data.num_train/num_val/num_test or raise data.seq_len"
        )
    seqs = torch.empty(0, cfg.seq_len, dtype=torch.long)
    while len(seqs) < count:
        # Oversample, then drop duplicates. Distinct rows come back sorted, so shuffle
        # afterwards with the same generator to keep the order random but seeded.
        draw = torch.randint(cfg.num_symbols, (2 * count, cfg.seq_len), generator=generator)
        seqs = _distinct_rows(torch.cat([seqs, draw]), cfg.num_symbols)
    order = torch.randperm(len(seqs), generator=generator)[:count]
    return seqs[order]


def _distinct_rows(seqs: torch.Tensor, base: int) -> torch.Tensor:
    """``torch.unique(seqs, dim=0)``: the distinct rows, in lexicographic order.
    Each row read as a number in base ``base`` sorts the same way, and unique on
    those numbers takes ~10 ms where unique over rows takes ~120 ms (every run and
    many tests build the splits). Rows too long for an int64 number use rows."""
    length = seqs.shape[1]
    if base**length >= 2**63:
        return torch.unique(seqs, dim=0)
    place = base ** torch.arange(length - 1, -1, -1)  # most significant digit first
    numbers = torch.unique((seqs * place).sum(dim=1))  # sorted
    return numbers[:, None] // place % base


def encode(cfg, sequences: torch.Tensor) -> dict[str, torch.Tensor]:
    """Turn source sequences [N, L] into next-token inputs and targets [N, 2L]."""
    n, length = sequences.shape
    sep = torch.full((n, 1), separator(cfg), dtype=torch.long)
    full = torch.cat([sequences, sep, sequences.flip(1)], dim=1)  # [N, 2L + 1]
    inputs = full[:, :-1]
    targets = full[:, 1:].clone()
    # Target position j predicts token j+1. The first L targets are the source
    # sequence and the separator: unknowable or trivial, so they do not count.
    targets[:, :length] = IGNORE
    return {"inputs": inputs, "targets": targets}


def build_splits(cfg) -> dict[str, dict[str, torch.Tensor]]:
    """Disjoint train/val/test splits, identical for identical configs."""
    sizes = [cfg.num_train, cfg.num_val, cfg.num_test]
    sequences = _unique_sequences(cfg, sum(sizes))
    # Rows are distinct, so cutting one list into slices gives disjoint splits.
    chunks = torch.split(sequences, sizes)
    return {name: encode(cfg, chunk) for name, chunk in zip(SPLITS, chunks, strict=True)}


def batch_layout(data_spec) -> dict[str, tuple[tuple, torch.dtype]]:
    """Per key of a training batch: its shape ("batch" for the batch dimension)
    and dtype. The generic tests hold every batch train_batches draws to it."""
    length = data_spec["context_length"]
    return {
        "inputs": (("batch", length), torch.long),
        "targets": (("batch", length), torch.long),
    }


def train_batches(cfg, split, batch_size: int, generator: torch.Generator, model=None):
    """Endless shuffled training batches. The task needs no augmentation and does
    not depend on the model (an RL collector would use it to act)."""
    return ShuffledBatches(split, batch_size, generator)


def overfit_batch(cfg, split, n: int, generator: torch.Generator, model=None):
    """``n`` training examples for the overfit checks (tests/test_overfit.py and
    the gauntlet): a batch exactly as training draws it."""
    return next(train_batches(cfg, split, n, generator, model))
