"""Loss and metrics: the negative evidence lower bound (ELBO), in nats.

For one example x, with q = q(z | x) = N(mu, sigma^2) and the prior p(z) = N(0, I):

    -ELBO(x) = E_q[-log p(x | z)] + KL(q || p)
             = reconstruction           + kl

Every reduction is written out:
- reconstruction: the Bernoulli negative log-likelihood summed over the pixels,
  estimated with one posterior sample;
- kl: closed form for two diagonal Gaussians, summed over the latent dimensions,
      KL = 0.5 * sum_d (mu_d^2 + sigma_d^2 - 1 - log sigma_d^2);
- the loss: the mean over the batch of reconstruction + kl.

Averaging over pixels instead of summing would shrink the reconstruction term by
the pixel count and let the KL term dominate: the latent code collapses to the prior.

Contract shared with the rest of the package (every paper type provides it):
``loss_fn``, ``metrics_fn``, ``split_metrics``, ``HEADLINE_METRIC``,
``expected_loss_at_init``, ``memorised``, ``summarise`` and ``baselines`` (the
independent-pixel model's NLL, ``nelbo_independent_pixels`` beside ``nelbo``).
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from omegaconf import MISSING

from .data import build_splits

# The number the example is judged by (PAPER.md; lower is better), and the value
# train() returns.
HEADLINE_METRIC = "nelbo"
HEADLINE_MODE = "min"  # lower is better: best.pt and the sweep summaries rank by it


@dataclass
class LossConfig:
    """The keys of configs/loss/*.yaml and their types (see configs/schema.py)."""

    kl_weight: float = MISSING


def reconstruction_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x | z) per example [N]: Bernoulli NLL summed over pixels.

    Written with log-sigmoid, which is stable for large |logits|:
    log p(1) = logsigmoid(l), log p(0) = logsigmoid(-l).
    """
    log_p = x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)
    return -log_p.sum(dim=1)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per example [N], summed over latents."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def loss_fn(outputs: dict, batch: dict[str, torch.Tensor], cfg) -> torch.Tensor:
    """Mean over the batch of reconstruction + kl_weight * KL: a scalar to minimise.

    ``cfg.kl_weight`` = 1 is the -ELBO itself. Other weights (beta-VAE) trade
    reconstruction for a more regular latent space; 0 turns the model into a plain
    autoencoder whose posterior can drift anywhere. The reported metric ``nelbo``
    always uses weight 1, so runs with different weights stay comparable.
    """
    recon = reconstruction_nll(outputs["logits"], batch["inputs"])
    kl = gaussian_kl(outputs["mu"], outputs["logvar"])
    return (recon + cfg.kl_weight * kl).mean()


def evaluation_noise(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """eps for each example drawn from its own seed: the same whatever the batching."""
    noise = [
        torch.randn(model.latent_dim, generator=torch.Generator().manual_seed(int(seed)))
        for seed in batch["seed"].tolist()
    ]
    return torch.stack(noise).to(batch["inputs"].device)


def metrics_fn(model, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-example -ELBO and its two terms, in nats, each of shape [N]."""
    outputs = model(batch["inputs"], noise=evaluation_noise(model, batch))
    recon = reconstruction_nll(outputs["logits"], batch["inputs"])
    kl = gaussian_kl(outputs["mu"], outputs["logvar"])
    return {"nelbo": recon + kl, "recon": recon, "kl": kl}


def memorised(model, batch: dict[str, torch.Tensor]) -> bool:
    """The overfit checks' pass condition: decoding the posterior mean gets every
    pixel of every example right (the KL term keeps the loss itself above zero)."""
    with torch.no_grad():
        mu, _ = model.encode(batch["inputs"])
        probs = torch.sigmoid(model.decoder(mu))
    p_true = torch.where(batch["inputs"] > 0.5, probs, 1 - probs)
    return bool(p_true.min() > 0.5)


def expected_loss_at_init(data_spec: dict[str, int], batch, cfg) -> float:
    """Every pixel predicted with p = 0.5 and the posterior equal to the prior:
    num_pixels * ln 2 nats."""
    return data_spec["num_pixels"] * math.log(2)


def independent_pixel_nll(train: torch.Tensor, x: torch.Tensor) -> float:
    """The baseline a VAE must beat: each pixel an independent Bernoulli with its
    training frequency (add-one smoothed), mean NLL per example in nats."""
    p = (train.sum(dim=0) + 1) / (len(train) + 2)
    return -(x * p.log() + (1 - x) * (1 - p).log()).sum(dim=1).mean().item()


@lru_cache(maxsize=4)
def training_images(val_fraction: float, test_fraction: float, seed: int) -> torch.Tensor:
    """The train split's images, built once per data config: every validation's
    baseline needs them."""
    cfg = SimpleNamespace(val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    return build_splits(cfg)["train"]["inputs"]


def baselines(split: dict, cfg) -> dict[str, dict[str, float]]:
    """The NLL (in nats per image, as ``nelbo``) of the independent-pixel model
    fitted to the training images: a VAE that does not beat it has learnt nothing
    about how pixels go together."""
    data = cfg.data
    train = training_images(data.val_fraction, data.test_fraction, data.seed)
    x = split["inputs"]
    return {"independent_pixels": {"nelbo": independent_pixel_nll(train.to(x.device), x)}}


def active_units(model, x: torch.Tensor, threshold: float = 0.01) -> int:
    """Latent dimensions whose posterior mean varies across inputs (Burda et al.,
    2016): Var_x(E_q[z_d | x]) > threshold. Few active units = posterior collapse."""
    mu, _ = model.encode(x)
    return int((mu.var(dim=0) > threshold).sum())


def mmd(a: torch.Tensor, b: torch.Tensor) -> float:
    """Squared maximum mean discrepancy (Gretton et al., 2012) between two sets of
    images [N, P]: mean k(a, a') + mean k(b, b') - 2 mean k(a, b), the biased
    estimator (0 for identical sets). Gaussian kernel, its bandwidth the median
    squared distance between two images of the pooled sets."""
    pooled = torch.cat([a, b])
    squared = torch.cdist(pooled, pooled).pow(2)  # float32: ~5x faster than float64
    rows, cols = torch.triu_indices(len(pooled), len(pooled), offset=1)
    pairs = squared[rows, cols]
    # Median over pairs; their mean if most pairs are duplicates (binary pixels).
    bandwidth = pairs.median() if pairs.median() > 0 else pairs.mean()
    if bandwidth == 0:  # every image the same: the two sets are identical
        return 0.0
    k = torch.exp(-squared / bandwidth).double()
    n = len(a)
    return float(k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean())


def sample_mmd(model, x: torch.Tensor, seed: int = 0) -> float:
    """Sample quality: ``mmd`` between len(x) images sampled from the model (z from
    the prior, each pixel drawn from its Bernoulli) and the images x.

    A per-example number cannot say this: the ELBO scores each image's likelihood,
    not whether samples look like the data (a model can score well and sample
    blur). The noise comes from its own generator (``seed``): the same samples at
    every evaluation, and training's random streams untouched."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(len(x), model.latent_dim, generator=generator).to(x.device)
    probs = torch.sigmoid(model.decoder(z)).cpu()
    return mmd(torch.bernoulli(probs, generator=generator), x.cpu())


def split_metrics(model, split: dict[str, torch.Tensor], cfg) -> dict[str, float]:
    """Metrics of a whole split that are not a mean over its examples (evaluation
    adds them to metrics_fn's means, in training's validation and in eval.py):
    active latent units (a variance across the split) and the sample quality
    against the split (sample_mmd). An encoder and a decoder pass over the split
    and a [2N, 2N] kernel: ~10 ms on the digits' validation split (270 images),
    where the per-example ELBO takes ~5 ms."""
    x = split["inputs"]
    return {"active_units": active_units(model, x), "sample_mmd": sample_mmd(model, x)}


{% include "_paper_types/_shared/write_png.py" %}

def image_grid(rows: list[torch.Tensor], size: int, scale: int = 4) -> torch.Tensor:
    """Tile rows of flat images [K, size*size] into one [H, W] picture, each pixel
    repeated ``scale`` times and a one-pixel grey border around every image."""
    tiles = []
    for row in rows:
        images = F.pad(row.reshape(-1, size, size), (1, 1, 1, 1), value=0.5)
        tiles.append(torch.cat(list(images), dim=1))  # side by side
    grid = torch.cat(tiles, dim=0)  # rows stacked
    return grid.repeat_interleave(scale, dim=0).repeat_interleave(scale, dim=1)


def summarise(model, splits, run_dir: Path, n_images: int = 10) -> dict[str, float]:
    """After training: ``samples.png`` (row 1: validation images; row 2: their
    reconstructions; rows 3-4: samples from the prior). Active units are in the
    validation metrics already (split_metrics), and the independent-pixel baseline
    beside each split's nelbo (baselines)."""
    val = splits["val"]["inputs"]
    size = int(math.isqrt(val.size(1)))
    originals = val[:n_images]
    mu, _ = model.encode(originals)
    reconstructions = torch.sigmoid(model.decoder(mu))
    prior = torch.randn(2 * n_images, model.latent_dim, generator=torch.Generator().manual_seed(0))
    samples = torch.sigmoid(model.decoder(prior.to(val.device)))
    rows = [originals, reconstructions, samples[:n_images], samples[n_images:]]
    write_png(Path(run_dir) / "samples.png", image_grid([r.cpu() for r in rows], size))
    return {}
