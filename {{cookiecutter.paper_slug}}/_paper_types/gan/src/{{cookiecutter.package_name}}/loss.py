"""Losses and metrics of WGAN-GP (Gulrajani et al., 2017, Algorithm 1).

Two players, each minimising its own loss over its own parameters (model.critic,
model.generator), stepped in turn by the loop: per iteration, ``players.critic.steps``
(n_critic = 5) critic updates, then one generator update, each on a fresh batch
(data.py) of real images x, noise z ~ N(0, I) and coefficients eps ~ U[0, 1]:

    critic     L_D = mean D(G(z)) - mean D(x) + lambda * mean (||grad D(x_hat)||_2 - 1)^2
    generator  L_G = -mean D(G(z))

with x_hat = eps x + (1 - eps) G(z), one eps per example: the penalty
holds the critic's gradient to norm 1 on the lines between real and generated
images, where the optimal critic of the Wasserstein-1 distance has norm 1 (the
paper's Proposition 1). That replaces the original WGAN's weight clipping.
Three details decide whether it works, and each has its test:

- the gradient is taken with ``create_graph=True``: the penalty is a function of
  the critic's weights through that gradient, and without the graph it reaches
  the loss as a constant, so the critic is never penalised at all;
- it is evaluated at the interpolates x_hat, per example (the gradient of one
  image's score with respect to that image: no batch normalisation in the critic,
  model.py), with its own eps per example (the batch's eps is [B, 1]: of shape
  [B] it would broadcast over the pixels instead, one eps per pixel);
- G(z) is a constant in the critic's loss (computed without a graph): the
  critic's step must not push gradients into the generator.

The loop zeroes, clips and steps only a player's own parameters, but both losses
run the whole model: the generator's loss backpropagates through the critic to
reach G (it leaves gradients on the critic's weights, which the critic's next
step zeroes before its own). No gradient clipping and no weight clipping: Adam at
1e-4 with betas (0, 0.9) for both players (the paper's), set in the experiments.

z and eps are the batch's ("z", "eps"), drawn with it from the data generator
(data.py says why): both losses are deterministic functions of the model and the
batch, and draw nothing from torch's global generator. Evaluation draws from its
own seeded generators: the same samples at every validation and in eval.py.

Metrics of a split (``split_metrics``, at every validation and in eval.py):

- ``frechet``: the Frechet distance (FID's formula) between ``loss.num_samples``
  generated images and the split's, in the space of the top ``loss.pca_dim``
  principal components of the training images; ``frechet_floor``, training images
  in the samples' place (what a perfect generator scores at this sample size).
  Its baseline (``baselines``, logged beside it as ``frechet_independent_pixels``):
  samples of independent pixels, each from its marginal.
- ``wasserstein``: the critic's estimate of the Wasserstein-1 distance, mean D(x)
  over the split minus mean D(G(z)) over the samples. The paper's progress curve:
  once the critic has caught up with the untrained generator, it falls as the
  samples improve, where the generator's loss says nothing (it moves with the
  critic's offset). Computed on the training split too (eval.py split=train), a
  gap between the two is the critic overfitting its training images (the paper's
  section on detecting overfitting).
- ``gradient_norm``: the mean ||grad D(x_hat)|| between the split and the samples,
  the quantity the penalty holds at 1; without the penalty it drifts far from 1.

Contract shared with the rest of the package (every paper type provides it):
``PLAYERS`` (here instead of ``loss_fn``: no single loss of the model's output
trains a GAN), ``NOT_APPLICABLE``, ``metrics_fn``, ``split_metrics``,
``HEADLINE_METRIC``, ``HEADLINE_MODE``, ``summarise`` and ``baselines``; not ``expected_loss_at_init``
or ``memorised``, which only the checks NOT_APPLICABLE declares would call.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import MISSING

from .data import split_images

# The number the example is judged by (PAPER.md; lower is better), and the value
# train() returns.
HEADLINE_METRIC = "frechet"
HEADLINE_MODE = "min"  # lower is better: best.pt and the sweep summaries rank by it


@dataclass
class LossConfig:
    """The keys of configs/loss/*.yaml and their types (see configs/schema.py)."""

    penalty_weight: float = MISSING  # lambda (the paper's 10; 0: no Lipschitz constraint)
    num_samples: int = MISSING  # generated images for the Frechet distances
    pca_dim: int = MISSING  # the Frechet distance's features: principal components


# --- The two players' losses ------------------------------------------------------


def interpolates(real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x_hat = eps * x + (1 - eps) * G(z), row by row (eps [N, 1])."""
    return eps * real + (1 - eps) * fake


def gradient_penalty(critic, x_hat: torch.Tensor) -> torch.Tensor:
    """(||grad_x D(x)||_2 - 1)^2 at each row x of ``x_hat``, [N], differentiable
    with respect to the critic's weights (create_graph=True).

    The gradient of the sum of the scores is each score's gradient with respect
    to its own image, as long as no score depends on another image (model.py).
    Autograd is switched on here whatever the caller's mode: the penalty is made
    of a gradient, so even its value (a loss evaluated under no_grad, as finite
    differences do) needs one."""
    with torch.enable_grad():
        x_hat = x_hat.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
        return (grad.norm(dim=1) - 1).pow(2)


def critic_loss(model, batch: dict, cfg) -> torch.Tensor:
    """L_D on a batch of real images x, noise z and coefficients eps [B, 1]:
    mean D(G(z)) - mean D(x), plus lambda times the mean gradient penalty at the
    interpolates. Minimised by the critic."""
    real, eps = batch["inputs"], batch["eps"]
    with torch.no_grad():  # G(z) is data here: the critic's step leaves G alone
        fake = model.generator(batch["z"])
    scores = model.critic(torch.cat([real, fake]))  # one pass for both: no score sees another
    loss = scores[len(real) :].mean() - scores[: len(real)].mean()
    if cfg.penalty_weight:
        penalty = gradient_penalty(model.critic, interpolates(real, fake, eps))
        loss = loss + cfg.penalty_weight * penalty.mean()
    return loss


def generator_loss(model, batch: dict, cfg) -> torch.Tensor:
    """L_G = -mean D(G(z)) over the batch's noise z (one sample per real image; the
    real images themselves are not used). Minimised by the generator, through the
    critic."""
    return -model.critic(model.generator(batch["z"])).mean()


# In the order the loop steps them; each steps model.<name>'s parameters only, with
# its own optimiser, players.<name>.steps times per iteration (configs/players/).
PLAYERS = {"critic": critic_loss, "generator": generator_loss}

# Why four of the generic checks (judge/diagnostics.py: CHECKS) cannot apply to a GAN.
NOT_APPLICABLE = {
    "overfit": (
        "a generator has no fixed target to memorise: its loss is set by a critic that "
        "moves with it, and no batch is ever fitted to zero loss"
    ),
    "loss at init": (
        "adversarial losses have no chance level to expect: an untrained critic scores "
        "real and generated images alike, and what the penalty adds depends on the scale "
        "of the initial weights alone"
    ),
    "input baseline": (
        "the inputs the check zeroes, the real images, are what the generator must "
        "imitate, not what it reads (its input is noise): a GAN trained on blank images "
        "is another problem, not a blind twin"
    ),
    "LR range": (
        "adversarial losses do not fall monotonically: each player's loss rises as the "
        "other learns, so a loss curve over growing learning rates picks nothing; "
        "sweep the learning rate on the Frechet distance instead (-m sweep=lr)"
    ),
}


# --- Evaluation -------------------------------------------------------------------


def metrics_fn(model, batch: dict) -> dict[str, torch.Tensor]:
    """The critic's score of each real image, [N]: the first half of the
    Wasserstein estimate (split_metrics has the whole)."""
    return {"critic_real": model(batch["inputs"])}


{% include "_paper_types/_shared/frechet.py" %}

@lru_cache(maxsize=4)
def training_images(val_fraction: float, test_fraction: float, seed: int) -> torch.Tensor:
    """The train split's images (the baseline and the feature space), read once
    per data config: every validation needs them."""
    return split_images(val_fraction, test_fraction, seed)["train"]


def gradient_norms(critic, x_hat: torch.Tensor) -> torch.Tensor:
    """||grad_x D(x)||_2 at each row of ``x_hat``, [N] (no graph kept)."""
    with torch.enable_grad():  # evaluation runs under no_grad
        x_hat = x_hat.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat)
    return grad.norm(dim=1)


@torch.no_grad()
def split_metrics(model, split: dict, cfg) -> dict[str, float]:
    """The Frechet distances of ``loss.num_samples`` samples to the split's images,
    the critic's Wasserstein estimate and its gradient norm between them. Samples
    from a generator seeded 1 (eps 3; the baseline's 2): the same at every call.
    A generator pass over the samples and a few critic passes: ~0.04 s."""
    images = split["inputs"]
    train = training_images(cfg.data.val_fraction, cfg.data.test_fraction, cfg.data.seed)
    samples = model.sample(cfg.loss.num_samples, images, torch.Generator().manual_seed(1))
    paired = samples[: len(images)]  # as many samples as images for the interpolates
    eps = torch.rand(len(paired), 1, generator=torch.Generator().manual_seed(3))
    x_hat = interpolates(images[: len(paired)], paired, eps.to(images))
    return {
        **frechet_distances(samples, images, train, cfg.loss.pca_dim),
        "wasserstein": float(model(images).mean() - model(samples).mean()),
        "gradient_norm": float(gradient_norms(model.critic, x_hat).mean()),
    }


def baselines(split: dict, cfg) -> dict[str, dict[str, float]]:
    """The Frechet distance of as many samples of independent pixels (each from its
    training marginal) as the model draws: what the samples must beat."""
    train = training_images(cfg.data.val_fraction, cfg.data.test_fraction, cfg.data.seed)
    images, generator = split["inputs"], torch.Generator().manual_seed(2)
    frechet = independent_pixel_frechet(
        images, train, cfg.loss.num_samples, cfg.loss.pca_dim, generator
    )
    return {"independent_pixels": {"frechet": frechet}}


# --- Pictures ---------------------------------------------------------------------


{% include "_paper_types/_shared/write_png.py" %}

def image_grid(images: torch.Tensor, columns: int, size: int, scale: int = 4) -> torch.Tensor:
    """Flat images [K, size*size] in [-1, 1] tiled ``columns`` to a row into one
    [H, W] picture in [0, 1], each pixel repeated ``scale`` times, a one-pixel
    mid-grey border around every image."""
    tiles = ((images.clamp(-1, 1) + 1) / 2).reshape(-1, size, size)
    tiles = F.pad(tiles, (1, 1, 1, 1), value=0.5)
    rows = tiles.reshape(-1, columns, size + 2, size + 2)  # [rows, columns, h, w]
    grid = rows.permute(0, 2, 1, 3).reshape(rows.size(0) * (size + 2), columns * (size + 2))
    return grid.repeat_interleave(scale, dim=0).repeat_interleave(scale, dim=1)


@torch.no_grad()
def summarise(model, splits, run_dir: Path) -> dict[str, float]:
    """After training: ``samples.png``, 64 samples (8 x 8, from a generator seeded
    0), and ``real.png``, the first 64 validation images, to compare them with."""
    size = model.data_spec["image_size"]
    real = splits["val"]["inputs"][:64]
    samples = model.sample(64, real, torch.Generator().manual_seed(0)).cpu()
    write_png(Path(run_dir) / "samples.png", image_grid(samples, 8, size))
    real = real.cpu()
    write_png(Path(run_dir) / "real.png", image_grid(real, 8, size))
    return {}
