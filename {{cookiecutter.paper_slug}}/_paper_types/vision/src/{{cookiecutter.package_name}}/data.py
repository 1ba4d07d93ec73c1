"""Data: the scikit-learn digits, as normalised image tensors.

1797 grey-scale 8x8 images of hand-written digits, 10 classes. They ship inside the
scikit-learn package, so nothing is downloaded. Images are [N, C, H, W] float32
tensors (C = 1), labels int64.

Two rules every vision reproduction must keep, and the tests check:
- normalisation statistics come from the training split only (computing them on
  all data leaks the test set into preprocessing);
- augmentation is applied to training batches only, and only transformations that
  keep the label (a horizontal flip turns some digits into other symbols, so it is
  not used here; small shifts are safe).

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

import importlib.util
from dataclasses import dataclass
from functools import partial
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
    max_shift: int = MISSING
    normalize: bool = MISSING


def spec(cfg) -> dict[str, int]:
    return {"in_channels": 1, "image_size": 8, "num_classes": 10}


{% include "_paper_types/_shared/read_digits.py" %}

def load_images() -> tuple[torch.Tensor, torch.Tensor]:
    """All images scaled to [0, 1] as [N, 1, 8, 8] float32, and their labels."""
    pixels, labels = read_digits()
    images = torch.tensor(pixels, dtype=torch.float32).view(-1, 1, 8, 8) / PIXEL_MAX
    return images, torch.tensor(labels, dtype=torch.long)


def build_splits(cfg) -> dict[str, dict[str, torch.Tensor]]:
    """Seeded disjoint splits, normalised with statistics of the training split."""
    images, labels = load_images()
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(cfg.seed))
    n_val = round(cfg.val_fraction * len(images))
    n_test = round(cfg.test_fraction * len(images))
    index = {
        "test": order[:n_test],
        "val": order[n_test : n_test + n_val],
        "train": order[n_test + n_val :],
    }
    train_images = images[index["train"]]
    # One mean and std per channel, over the training images only.
    mean = train_images.mean(dim=(0, 2, 3), keepdim=True)
    std = train_images.std(dim=(0, 2, 3), keepdim=True)
    if not cfg.normalize:  # the ablation: raw [0, 1] pixels
        mean, std = torch.zeros_like(mean), torch.ones_like(std)
    return {
        name: {"inputs": (images[index[name]] - mean) / std, "targets": labels[index[name]]}
        for name in SPLITS
    }


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator):
    """Move each image by up to ``max_shift`` pixels in x and y (a label-preserving
    augmentation). Pixels shifted in take the image's background value: its
    minimum, which is raw 0 after normalisation."""
    if max_shift == 0:
        return images
    n, _, h, w = images.shape
    background = images.amin(dim=(1, 2, 3), keepdim=True)
    pad = max_shift
    canvas = background.expand(n, images.size(1), h + 2 * pad, w + 2 * pad).clone()
    canvas[:, :, pad : pad + h, pad : pad + w] = images
    # One random offset per image; crop a window of the original size at it.
    # The generator lives on the CPU; only the offsets travel to the device, without
    # blocking: the host does not wait for the GPU to finish its queue every step.
    offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=generator)
    dy, dx = offsets.to(images.device, non_blocking=True)
    arange = partial(torch.arange, device=images.device)
    rows = (dy[:, None] + arange(h))[:, None, :, None]  # [N, 1, H, 1]
    cols = (dx[:, None] + arange(w))[:, None, None, :]  # [N, 1, 1, W]
    return canvas[
        arange(n)[:, None, None, None], arange(images.size(1))[None, :, None, None], rows, cols
    ]


def batch_layout(data_spec) -> dict[str, tuple[tuple, torch.dtype]]:
    """Per key of a training batch: its shape ("batch" for the batch dimension)
    and dtype. The generic tests hold every batch train_batches draws to it."""
    c, s = data_spec["in_channels"], data_spec["image_size"]
    return {
        "inputs": (("batch", c, s, s), torch.float32),
        "targets": (("batch",), torch.long),
    }


def train_batches(cfg, split, batch_size: int, generator: torch.Generator, model=None):
    """Endless shuffled training batches, each image randomly shifted by up to
    ``cfg.max_shift`` pixels (0 turns augmentation off). Evaluation reads the splits
    directly: no augmentation, so it is deterministic."""

    def augment(batch, generator):
        return {**batch, "inputs": random_shift(batch["inputs"], cfg.max_shift, generator)}

    return ShuffledBatches(split, batch_size, generator, transform=augment)


def overfit_batch(cfg, split, n: int, generator: torch.Generator, model=None):
    """``n`` training examples for the overfit checks (tests/test_overfit.py and
    the gauntlet): a batch exactly as training draws it."""
    return next(train_batches(cfg, split, n, generator, model))
