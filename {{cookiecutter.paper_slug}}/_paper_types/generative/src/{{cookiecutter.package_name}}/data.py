"""Data: the scikit-learn digits, binarised, as vectors of 64 pixels.

1797 grey-scale 8x8 images of hand-written digits ship inside scikit-learn, so
nothing is downloaded. Each pixel is binarised (on if at least half of full
brightness), so that a Bernoulli likelihood per pixel is the right model: the
targets of a Bernoulli decoder must lie in [0, 1], and here they are exactly 0 or 1.

Every example also carries a ``seed``: evaluation draws the VAE's posterior noise
from it, so an evaluated ELBO is the same number whatever the batching, during
training and in eval.py alike (a plain random draw would make every evaluation
differ a little).

Contract shared with the rest of the package (every paper type provides it):
- ``spec(cfg)`` -> dict of what the model needs to know: sizes, and any other
  values (floats such as a noise schedule's betas are fine).
- ``build_splits(cfg)`` -> {"train" | "val" | "test": {"inputs": Tensor, "seed": Tensor}}.
- ``train_batches(cfg, split, batch_size, generator, model)`` -> endless training
  batches; every per-batch random draw (augmentation, noise, a time step) comes
  from ``generator``, so that a resumed run draws the same.
- ``overfit_batch(cfg, split, n, generator, model)`` -> n examples to memorise.
- ``batch_layout(spec)`` -> per key of a training batch: shape and dtype.
A batch's "inputs" is what the model's forward receives: one tensor, or a dict of
tensors ({"x_t": ..., "t": ...}) when the model takes several.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import MISSING

from .engine.batches import ShuffledBatches

SPLITS = ("train", "val", "test")
PIXEL_MAX = 16.0  # the digits' raw pixel values are integers 0..16


@dataclass
class DataConfig:
    """The keys of configs/data/*.yaml and their types (see configs/schema.py)."""

    val_fraction: float = MISSING
    test_fraction: float = MISSING
    seed: int = MISSING


def spec(cfg) -> dict[str, int]:
    return {"num_pixels": 64, "image_size": 8}


{% include "_paper_types/_shared/read_digits.py" %}

def load_binary_images() -> torch.Tensor:
    """All images as [N, 64] float32 vectors of exactly 0.0 or 1.0."""
    images = torch.tensor(read_digits()[0], dtype=torch.float32)
    return (images / PIXEL_MAX >= 0.5).float()


def build_splits(cfg) -> dict[str, dict[str, torch.Tensor]]:
    """Seeded disjoint splits of the binarised images."""
    images = load_binary_images()
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(cfg.seed))
    n_val = round(cfg.val_fraction * len(images))
    n_test = round(cfg.test_fraction * len(images))
    index = {
        "test": order[:n_test],
        "val": order[n_test : n_test + n_val],
        "train": order[n_test + n_val :],
    }
    # The image's position in the full data set doubles as its evaluation-noise seed.
    return {name: {"inputs": images[index[name]], "seed": index[name]} for name in SPLITS}


def batch_layout(data_spec) -> dict[str, tuple[tuple, torch.dtype]]:
    """Per key of a training batch: its shape ("batch" for the batch dimension)
    and dtype. The generic tests hold every batch train_batches draws to it."""
    return {
        "inputs": (("batch", data_spec["num_pixels"]), torch.float32),
        "seed": (("batch",), torch.long),
    }


def train_batches(cfg, split, batch_size: int, generator: torch.Generator, model=None):
    """Endless shuffled training batches; the inputs are also the targets."""
    return ShuffledBatches(split, batch_size, generator)


def overfit_batch(cfg, split, n: int, generator: torch.Generator, model=None):
    """``n`` training examples for the overfit checks (tests/test_overfit.py and
    the gauntlet): a batch exactly as training draws it."""
    return next(train_batches(cfg, split, n, generator, model))
