"""Data: the scikit-learn digits in [-1, 1], the real images a GAN's critic sees.

1797 grey-scale 8x8 images of hand-written digits ship inside scikit-learn, so
nothing is downloaded. Their pixels are integers 0..16, scaled to v / 8 - 1 in
[-1, 1]: the range of the generator's tanh output (model.py), so that real and
generated images live on the same scale and the critic cannot tell them apart by
range alone. The splits are the diffusion example's (the same seed gives the same
1257 / 270 / 270 images), so the two generative examples are scored on the same
test images.

A training batch is real images and everything else Algorithm 1 draws for a
player's step: {"inputs": [B, 64], "z": [B, noise_dim], "eps": [B, 1]}, the
generator's noise z ~ N(0, I) and the interpolation coefficients eps ~ U[0, 1] of
the gradient penalty, one row per real image. Both are drawn in the batch
transform, from the data generator that also shuffles the images, as the
diffusion example draws its t and eps: the losses (loss.py) are then deterministic
functions of the model and the batch, and no training randomness comes from
torch's global generator. So a resumed run (the batch stream and its generator
restored) draws the same noise as the uninterrupted one, and gradient
accumulation in micro-batches and data-parallel shards, which slice a batch,
see the very noise the whole-batch run sees. z's size is therefore a data
setting (``noise_dim``), which the model reads from ``spec``. Every player step
takes a batch of its own (the loop draws one per step): the critic's five steps
of an iteration see five different batches of real images and noise, as
Algorithm 1's inner loop samples a fresh minibatch each time. The generator's
step uses only the batch's z (as many samples as real images).

Contract shared with the rest of the package (every paper type provides it):
- ``spec(cfg)`` -> dict of what the model needs to know: sizes, noise_dim.
- ``build_splits(cfg)`` -> per split ("train", "val", "test") a dict {"inputs": [n, 64]}.
- ``train_batches(cfg, split, batch_size, generator, model)`` -> endless shuffled
  batches of real images with their z and eps; the order, z and eps come from
  ``generator``.
- ``overfit_batch(cfg, split, n, generator, model)`` -> one training batch of n
  (the overfit checks do not apply to a GAN: loss.NOT_APPLICABLE says why).
- ``batch_layout(spec)`` -> per key of a training batch: shape and dtype.
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
PIXEL_MAX = 16  # the digits' raw pixel values are integers 0..16: 17 grey levels


@dataclass
class DataConfig:
    """The keys of configs/data/*.yaml and their types (see configs/schema.py)."""

    val_fraction: float = MISSING
    test_fraction: float = MISSING
    seed: int = MISSING
    noise_dim: int = MISSING  # the size of the generator's noise z ~ N(0, I)


def spec(cfg) -> dict:
    return {"num_pixels": 64, "image_size": 8, "noise_dim": cfg.noise_dim}


{% include "_paper_types/_shared/read_digits.py" %}

{% include "_paper_types/_shared/digit_images.py" %}

def build_splits(cfg) -> dict[str, dict[str, torch.Tensor]]:
    """The splits of ``split_images``, each a dict with the images as "inputs"."""
    images = split_images(cfg.val_fraction, cfg.test_fraction, cfg.seed)
    return {name: {"inputs": images[name]} for name in SPLITS}


def batch_layout(data_spec) -> dict:
    """Per key of a training batch: its shape ("batch" for the batch dimension)
    and dtype. The generic tests hold every batch train_batches draws to it."""
    return {
        "inputs": (("batch", data_spec["num_pixels"]), torch.float32),
        "z": (("batch", data_spec["noise_dim"]), torch.float32),
        "eps": (("batch", 1), torch.float32),  # [B, 1]: one per image, not per pixel
    }


def with_noise(noise_dim: int, batch: dict, generator: torch.Generator) -> dict:
    """The batch transform: ``batch`` with z ~ N(0, I) [B, noise_dim] and eps ~ U[0, 1]
    [B, 1], one row per image, drawn from ``generator`` (on the CPU, then moved to
    the images' device and dtype). eps is drawn at lambda = 0 too: both settings
    draw the same stream."""
    real = batch["inputs"]
    z = torch.randn(len(real), noise_dim, generator=generator)
    eps = torch.rand(len(real), 1, generator=generator)
    return {**batch, "z": z.to(real), "eps": eps.to(real)}


def train_batches(cfg, split, batch_size: int, generator: torch.Generator, model=None):
    """Endless shuffled batches of real training images, each drawn once per epoch,
    with fresh noise z and interpolation coefficients eps every time."""
    transform = partial(with_noise, cfg.noise_dim)
    return ShuffledBatches(split, batch_size, generator, transform=transform)


def overfit_batch(cfg, split, n: int, generator: torch.Generator, model=None):
    """``n`` training images with their z and eps, a batch exactly as training draws it."""
    return next(train_batches(cfg, split, n, generator, model))
