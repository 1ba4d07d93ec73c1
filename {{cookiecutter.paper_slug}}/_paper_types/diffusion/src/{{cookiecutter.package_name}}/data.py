"""Data: the scikit-learn digits in [-1, 1], noised by DDPM's forward process.

1797 grey-scale 8x8 images of hand-written digits ship inside scikit-learn, so
nothing is downloaded. Their pixels are integers 0..16 (17 grey levels), scaled to
x0 = v / 8 - 1 in [-1, 1] (Ho et al., 2020, scale every image that way): neighbouring
levels are 1/8 apart, which the discretised decoder of the bound uses (loss.py).

The forward process (the paper's q) adds Gaussian noise in T steps whose variances
beta_1..beta_T rise linearly. Written in closed form (the paper's eq. 4),

    x_t = sqrt(abar_t) * x0 + sqrt(1 - abar_t) * eps,   abar_t = prod_{s <= t} (1 - beta_s),

so a training example is one image, one time step t and one eps ~ N(0, I): the model
sees {"x_t", "t"} and must predict eps. In the code the time step is an index
0..T-1 into ``betas`` and ``alpha_bars``: index i is the paper's t = i + 1, and
index 0 the least noisy step. The training noising here and the sampler in loss.py
index the same tensors the same way (tests/test_diffusion_pitfalls.py checks it).
So does the model's Bayes step, written here beside the process it inverts:
``level_posterior_mean`` (E[x0 | x_t] when pixels are grey levels) and
``noise_from_x0`` (the eps that noises a given x0 into x_t).

Training draws t and eps afresh for every batch, in the batch transform and from the
data generator, so that a resumed run draws what the uninterrupted one would.
Evaluation splits carry a t and an eps drawn once from a seeded generator, so a
validation number is the same at every evaluation and in eval.py.

Contract shared with the rest of the package (every paper type provides it):
- ``spec(cfg)`` -> dict of what the model needs to know: sizes, and the noise
  schedule (``betas``: floats are part of the contract).
- ``build_splits(cfg)`` -> {"train" | "val" | "test": {"inputs": {"x_t", "t"},
  "noise", "x0"}}.
- ``train_batches(cfg, split, batch_size, generator, model)`` -> endless training
  batches; t and eps come from ``generator``.
- ``overfit_batch(cfg, split, n, generator, model)`` -> n examples to memorise.
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
    num_steps: int = MISSING  # T
    beta_start: float = MISSING  # beta_1
    beta_end: float = MISSING  # beta_T


def spec(cfg) -> dict:
    """Sizes, and the noise schedule: beta_1..beta_T rising linearly (float64)."""
    betas = torch.linspace(cfg.beta_start, cfg.beta_end, cfg.num_steps, dtype=torch.float64)
    return {
        "num_pixels": 64,
        "image_size": 8,
        "num_levels": PIXEL_MAX + 1,
        "num_steps": cfg.num_steps,
        "betas": betas.tolist(),
    }


def schedule(data_spec) -> dict[str, torch.Tensor]:
    """betas, alphas = 1 - betas and alpha_bars (their running product), float64 [T].

    float64 because abar_t is a product of up to 1000 factors, and the bound divides
    by 1 - abar_t, which is ~1e-4 at the first step."""
    betas = torch.tensor(data_spec["betas"], dtype=torch.float64)
    alphas = 1 - betas
    return {"betas": betas, "alphas": alphas, "alpha_bars": torch.cumprod(alphas, dim=0)}


{% include "_paper_types/_shared/read_digits.py" %}

def forward_coefficients(t: torch.Tensor, alpha_bars, device) -> tuple[torch.Tensor, torch.Tensor]:
    """sqrt(abar_t) and sqrt(1 - abar_t) per row of t, [B, 1] float32 each on ``device``.

    Computed in float64 and only then rounded: 1 - abar_t in float32 has a relative
    error of ~1e-4 at the first step (abar_1 = 0.9999)."""
    alpha_bars = alpha_bars.cpu().double()
    signal = alpha_bars.sqrt().float().to(device)[t].unsqueeze(1)
    noise_scale = (1 - alpha_bars).sqrt().float().to(device)[t].unsqueeze(1)
    return signal, noise_scale


def noised(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alpha_bars) -> torch.Tensor:
    """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps: q(x_t | x0) in closed form."""
    signal, noise_scale = forward_coefficients(t, alpha_bars, x0.device)
    return signal * x0 + noise_scale * noise


def noise_from_x0(x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor, alpha_bars) -> torch.Tensor:
    """The eps that makes ``noised(x0, t, eps) == x_t``: the noise a denoiser that
    guesses x0 implies."""
    signal, noise_scale = forward_coefficients(t, alpha_bars, x_t.device)
    return (x_t - signal * x0) / noise_scale


def level_posterior_mean(
    x_t: torch.Tensor, t: torch.Tensor, alpha_bars, prior_logits: torch.Tensor
) -> torch.Tensor:
    """E[x0 | x_t] per pixel when each pixel of x0 is one of the L grey levels:
    Bayes' rule, prior times likelihood. ``prior_logits`` [B, P, L] are the log prior
    of each level up to a constant (the model's guess; zeros: every level alike);
    the likelihood of level v is q(x_t | x0 = v) = N(sqrt(abar_t) v, 1 - abar_t).
    x_t [B, P], t [B] -> [B, P]."""
    num_levels = prior_logits.size(-1)
    levels = torch.linspace(-1, 1, num_levels, device=x_t.device, dtype=x_t.dtype)
    signal, noise_scale = forward_coefficients(t, alpha_bars, x_t.device)
    distance = (x_t.unsqueeze(-1) - signal.unsqueeze(-1) * levels) / noise_scale.unsqueeze(-1)
    weights = torch.softmax(prior_logits - 0.5 * distance.pow(2), dim=-1)  # [B, P, L]
    return (weights * levels).sum(dim=-1)


def with_noise(
    x0: torch.Tensor, alpha_bars, generator: torch.Generator, steps: tuple | None = None
) -> dict:
    """One example per image: t uniform in ``range(*steps)`` (default: every step)
    and eps ~ N(0, I), both drawn from ``generator`` (on the CPU, then moved)."""
    low, high = (0, len(alpha_bars)) if steps is None else steps
    t = torch.randint(low, high, (len(x0),), generator=generator).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    return {"inputs": {"x_t": noised(x0, t, noise, alpha_bars), "t": t}, "noise": noise, "x0": x0}


{% include "_paper_types/_shared/digit_images.py" %}

def build_splits(cfg) -> dict[str, dict]:
    """The splits of ``split_images``, each example with a fixed t and eps."""
    images = split_images(cfg.val_fraction, cfg.test_fraction, cfg.seed)
    alpha_bars = schedule(spec(cfg))["alpha_bars"]
    generator = torch.Generator().manual_seed(cfg.seed + 1)  # the splits' fixed t and eps
    return {name: with_noise(images[name], alpha_bars, generator) for name in SPLITS}


def batch_layout(data_spec) -> dict:
    """Per key of a training batch: its shape ("batch" for the batch dimension)
    and dtype; the dict of inputs as a dict."""
    pixels = (("batch", data_spec["num_pixels"]), torch.float32)
    return {
        "inputs": {"x_t": pixels, "t": (("batch",), torch.int64)},
        "noise": pixels,
        "x0": pixels,
    }


def renoise(alpha_bars: torch.Tensor, batch: dict, generator: torch.Generator) -> dict:
    """The batch transform: a fresh t and eps for every image of the batch."""
    return with_noise(batch["x0"], alpha_bars, generator)


def train_batches(cfg, split, batch_size: int, generator: torch.Generator, model=None):
    """Endless shuffled batches of training images, noised afresh every time."""
    transform = partial(renoise, schedule(spec(cfg))["alpha_bars"])
    return ShuffledBatches(split, batch_size, generator, transform=transform)


def overfit_batch(cfg, split, n: int, generator: torch.Generator, model=None):
    """``n`` examples for the overfit checks, all at one time step drawn from T/50 to
    T/5 (the paper's schedule: noise of std 0.08 to 0.6, the grey levels 0.125 apart).

    Outside that band a batch is fitted without telling the images apart. At a
    large t, x_t is almost the noise itself (abar_T ~ 0), so predicting eps is
    nearly the identity map. At a small t the noise is finer than the gap between
    grey levels, and the model's Bayes step (model.py) reads x0 off x_t by rounding
    to the nearest level before it has learned anything. In the band neither
    works, and an untrained model's squared error is ~0.75.

    One t for all: the gauntlet's input baseline gives every probe example the
    first one's t (judge/gauntlet.py: one_condition), and an x_t noised at another t than
    the model is told is no example of the forward process at all; its noise can
    be out of reach of a model whose Bayes step believes the t it is given."""
    images = next(train_batches(cfg, split, n, generator, model))["x0"]
    alpha_bars = schedule(spec(cfg))["alpha_bars"]
    low = cfg.num_steps // 50
    t = int(torch.randint(low, max(low + 1, cfg.num_steps // 5), (1,), generator=generator))
    return with_noise(images, alpha_bars, generator, steps=(t, t + 1))
