"""Loss, sampler and metrics of DDPM (Ho et al., 2020).

Training minimises L_simple (the paper's eq. 14): the mean over the batch and the
pixels of (eps - eps_theta(x_t, t))^2, the noise that data.py added against the
model's guess of it. The batch holds that noise (``batch["noise"]``); the loss
never sees the model.

Sampling is the paper's Algorithm 2: x_T ~ N(0, I), then for t = T..1

    x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) * eps_theta(x_t, t)) / sqrt(alpha_t) + sigma_t z

with z ~ N(0, I), except z = 0 at the last step. No clipping. Of the paper's two
variances (section 3.2) it takes sigma_t^2 = beta~_t = (1 - abar_{t-1}) / (1 - abar_t)
beta_t, the variance of q(x_{t-1} | x_t, x0), "optimal for x0 deterministically set
to one point": near t = 1 the level x0 sits on is known from x_t (model.py), and
the other choice, beta_t, is twice too wide at t = 2. That mismatch alone costs
0.23 bits per pixel of bound, summed over the steps; the samples barely differ (the
paper: "similar results"). The decoder, L_0, keeps sigma_1^2 = beta_1 (beta~_1 is 0).

Two numbers of a whole split (``split_metrics``, at every validation and in eval.py):

- ``bpd``: the variational bound on -log p(x0) (the paper's eq. 5), in bits per
  pixel, with every one of its T terms computed (no sampling of t):
      L_T      KL(q(x_T | x0) || N(0, I)), closed form;
      L_{t-1}  KL(q(x_{t-1} | x_t, x0) || p_theta(x_{t-1} | x_t)) for t = 2..T, two
               Gaussians, closed form given one x_t ~ q(x_t | x0) per image and step;
      L_0      -log p_theta(x0 | x1): the discretised decoder. The digits have 17
               grey levels, v / 8 - 1 in [-1, 1], 1/8 apart: level v owns the interval
               [x0 - 1/16, x0 + 1/16] of the Gaussian N(mu_theta(x_1, 1), beta_1),
               the lowest level everything below, the highest everything above (the
               paper's eq. 13 with 17 bins instead of 256).
  So it is a bound on a discrete likelihood, comparable to any discrete model of
  the 17 levels: log2(17) = 4.09 bits for uniform pixels.
- ``frechet``: the Frechet distance (FID's formula) between ``num_samples`` samples
  and the split's images, in a feature space defined here: the top ``pca_dim``
  principal components of the training images (pixels in [-1, 1], not whitened).
  Beside it, ``frechet_floor``: as many training images against the split's, what
  a perfect sampler would score at this sample size.

Baselines (``baselines``, logged beside them as ``bpd_independent_pixels`` and
``frechet_independent_pixels``): every pixel independent with its own level
frequencies in the training images, its exact likelihood and its samples.

Contract shared with the rest of the package (every paper type provides it):
``loss_fn``, ``metrics_fn``, ``split_metrics``, ``HEADLINE_METRIC``,
``expected_loss_at_init``, ``memorised``, ``summarise`` and ``baselines``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from omegaconf import MISSING

from .data import (
    level_posterior_mean,
    noise_from_x0,
    noised,
    schedule,
    spec,
    split_images,
)

# The number the example is judged by (PAPER.md; lower is better), and the value
# train() returns.
HEADLINE_METRIC = "bpd"
HEADLINE_MODE = "min"  # lower is better: best.pt and the sweep summaries rank by it


@dataclass
class LossConfig:
    """The keys of configs/loss/*.yaml and their types (see configs/schema.py)."""

    bound_images: int = MISSING  # images of the split the bound is computed on
    num_samples: int = MISSING  # samples for the Frechet distances
    pca_dim: int = MISSING  # the Frechet distance's features: principal components


def loss_fn(outputs: torch.Tensor, batch: dict, cfg) -> torch.Tensor:
    """L_simple: mean over examples and pixels of (eps_hat - eps)^2."""
    return (outputs - batch["noise"]).pow(2).mean()


def metrics_fn(model, batch: dict) -> dict[str, torch.Tensor]:
    """Per-example L_simple at the split's fixed t and eps, mean over pixels, [N]."""
    return {"mse": (model(batch["inputs"]) - batch["noise"]).pow(2).mean(dim=1)}


# --- The reverse process -----------------------------------------------------------


def per_row(values: torch.Tensor, t, like: torch.Tensor):
    """values[t] (a float64 table over the T steps) ready to multiply tensors like
    ``like``: a float for an int t, a [rows, 1] column for a tensor of steps.
    Gathered in float64 and only then rounded to ``like``'s precision."""
    if isinstance(t, int):
        return values[t].item()
    return values[t.cpu()].unsqueeze(1).to(device=like.device, dtype=like.dtype)


def reverse_mean(sched: dict, x_t: torch.Tensor, t, eps: torch.Tensor) -> torch.Tensor:
    """mu_theta(x_t, t) = (x_t - beta_t / sqrt(1 - abar_t) * eps) / sqrt(alpha_t)
    (eq. 11); t an index into the schedule (the paper's t - 1), one int or one per row."""
    eps_scale = per_row(sched["betas"] / (1 - sched["alpha_bars"]).sqrt(), t, x_t)
    return (x_t - eps_scale * eps) * per_row(sched["alphas"].rsqrt(), t, x_t)


def posterior(sched: dict, x0: torch.Tensor, x_t: torch.Tensor, t):
    """q(x_{t-1} | x_t, x0) = N(mean, variance) (eqs. 6 and 7), for indices t >= 1."""
    betas, alphas, abar = sched["betas"], sched["alphas"], sched["alpha_bars"]
    abar_prev = torch.cat([abar.new_ones(1), abar[:-1]])
    x0_scale = per_row(abar_prev.sqrt() * betas / (1 - abar), t, x_t)
    x_t_scale = per_row(alphas.sqrt() * (1 - abar_prev) / (1 - abar), t, x_t)
    variance = per_row((1 - abar_prev) / (1 - abar) * betas, t, x_t)
    return x0_scale * x0 + x_t_scale * x_t, variance


def reverse_variance(sched: dict) -> torch.Tensor:
    """sigma_t^2 of p_theta(x_{t-1} | x_t) per index, float64 [T]: beta~_t, the
    posterior's, from index 1 on; beta_1 at index 0, the decoder's spread."""
    abar = sched["alpha_bars"]
    posterior_variance = (1 - abar[:-1]) / (1 - abar[1:]) * sched["betas"][1:]
    return torch.cat([sched["betas"][:1], posterior_variance])


def reverse_step(model, sched: dict, x_t: torch.Tensor, t: int, z: torch.Tensor) -> torch.Tensor:
    """One step of Algorithm 2: x_{t-1} = mu_theta(x_t, t) + sigma_t z, with
    sigma_t^2 = beta~_t, and no noise at the last step (index 0)."""
    steps = torch.full((len(x_t),), t, dtype=torch.int64, device=x_t.device)
    x = reverse_mean(sched, x_t, t, model({"x_t": x_t, "t": steps}))
    return x + math.sqrt(reverse_variance(sched)[t].item()) * z if t > 0 else x


@torch.no_grad()
def sample(model, data_spec, n: int, generator: torch.Generator, device, keep=()) -> tuple:
    """Algorithm 2: n images from x_T ~ N(0, I). All noise from ``generator`` (CPU).
    Returns x_0 [n, P] and the x_t at each index in ``keep`` (dict index -> [n, P];
    index T is x_T, the starting noise)."""
    sched = schedule(data_spec)
    num_steps = len(sched["betas"])
    x = torch.randn(n, data_spec["num_pixels"], generator=generator).to(device)
    kept = {num_steps: x.cpu()} if num_steps in keep else {}
    for t in reversed(range(num_steps)):
        z = torch.randn(x.shape, generator=generator).to(device) if t > 0 else None
        x = reverse_step(model, sched, x, t, z)
        if t in keep:
            kept[t] = x.cpu()
    return x, kept


# --- The variational bound -----------------------------------------------------------


def gaussian_kl(mean_q, var_q: float, mean_p, var_p: float) -> torch.Tensor:
    """KL(N(mean_q, var_q) || N(mean_p, var_p)) summed over pixels, [N] (nats)."""
    log_ratio = torch.log(torch.as_tensor(var_p / var_q))  # a float or a column per row
    per_pixel = 0.5 * (log_ratio + (var_q + (mean_q - mean_p) ** 2) / var_p - 1)
    return per_pixel.sum(dim=1)


def discretised_nll(x0: torch.Tensor, mean: torch.Tensor, std: float) -> torch.Tensor:
    """-log P(x0) under N(mean, std^2) discretised to the 17 grey levels (the
    interval of level v: x0 +- 1/16; the end levels reach to -inf and +inf), summed
    over pixels, [N] (nats). The probability is floored at 1e-12, as in the paper's
    code, so that a badly wrong decoder costs ~28 nats per pixel, not infinity."""
    half_bin = 1 / 16  # levels are 1/8 apart in [-1, 1]
    upper = torch.special.ndtr((x0 + half_bin - mean) / std)
    lower = torch.special.ndtr((x0 - half_bin - mean) / std)
    upper = torch.where(x0 > 1 - half_bin, torch.ones_like(upper), upper)  # top level
    lower = torch.where(x0 < -1 + half_bin, torch.zeros_like(lower), lower)  # bottom level
    return -(upper - lower).clamp(min=1e-12).log().sum(dim=1)


@torch.no_grad()
def variational_bound(
    model, data_spec, x0: torch.Tensor, generator, rows: int = 8192
) -> dict[str, torch.Tensor]:
    """The bound's three parts per image, [N] each, in nats: ``prior`` (L_T),
    ``diffusion`` (L_1 .. L_{T-1} summed) and ``decoder`` (L_0). One x_t per image
    and step, its noise from ``generator``. Unlike sampling, the T terms do not
    depend on each other: they are evaluated for many (image, step) pairs at once,
    about ``rows`` per forward pass."""
    sched = schedule(data_spec)
    num_steps, n = len(sched["betas"]), len(x0)
    variances = reverse_variance(sched)  # p_theta's, per step: the sampler's sigma_t^2
    abar_last = sched["alpha_bars"][-1].item()
    prior = gaussian_kl(math.sqrt(abar_last) * x0, 1 - abar_last, torch.zeros_like(x0), 1.0)
    diffusion = torch.zeros(n, dtype=torch.float64, device=x0.device)
    chunk = max(1, rows // n)  # time steps per forward pass
    for first in range(0, num_steps, chunk):
        t = torch.arange(first, min(first + chunk, num_steps)).repeat_interleave(n)
        images = x0.repeat(len(t) // n, 1)  # step-major: every image at step s, then s + 1
        noise = torch.randn(images.shape, generator=generator).to(x0.device)
        x_t = noised(images, t.to(x0.device), noise, sched["alpha_bars"])
        mean_p = reverse_mean(sched, x_t, t, model({"x_t": x_t, "t": t.to(x0.device)}))
        variance_p = per_row(variances, t, x_t)
        if first == 0:  # the first n rows are step 0: the decoder, L_0
            decoder = discretised_nll(x0, mean_p[:n], math.sqrt(variances[0].item()))
            t, images, x_t, mean_p, variance_p = (
                v[n:] for v in (t, images, x_t, mean_p, variance_p)
            )
        mean_q, variance_q = posterior(sched, images, x_t, t)
        kl = gaussian_kl(mean_q, variance_q, mean_p, variance_p).double()
        diffusion += kl.reshape(-1, n).sum(dim=0)  # [steps, n] -> the sum over steps
    return {"prior": prior.double(), "diffusion": diffusion, "decoder": decoder.double()}


# --- Baselines and the Frechet distance ------------------------------------------


{% include "_paper_types/_shared/frechet.py" %}

def independent_pixel_bpd(train: torch.Tensor, x: torch.Tensor) -> float:
    """The baseline: every pixel independent with its training level frequencies;
    mean -log2 p(x) over the images, per pixel."""
    log_p = level_frequencies(train).log().gather(1, to_levels(x).T.cpu())  # [P, N]
    return float(-log_p.sum(dim=0).mean() / (x.size(1) * math.log(2)))


@lru_cache(maxsize=4)
def training_images(val_fraction: float, test_fraction: float, seed: int) -> torch.Tensor:
    """The train split's clean images (the baselines and the feature space), read
    once per data config: every validation needs them."""
    return split_images(val_fraction, test_fraction, seed)["train"]


@torch.no_grad()
def split_metrics(model, split: dict, cfg) -> dict[str, float]:
    """The bound in bits per pixel on the first ``loss.bound_images`` images of the
    split, and the Frechet distance of ``loss.num_samples`` samples to the whole
    split, with its floor beside it. 2T forward passes (the bound and the sampler):
    with T = 1000 the most expensive part of a validation, so the reference
    experiment sets its sizes (configs/loss/ddpm.yaml says the cost)."""
    data_spec = spec(cfg.data)
    train = training_images(cfg.data.val_fraction, cfg.data.test_fraction, cfg.data.seed)
    x0 = split["x0"]
    bound_x0 = x0[: cfg.loss.bound_images]
    to_bits = x0.size(1) * math.log(2)  # nats per image -> bits per pixel
    terms = variational_bound(model, data_spec, bound_x0, torch.Generator().manual_seed(0))
    n = cfg.loss.num_samples
    samples, _ = sample(model, data_spec, n, torch.Generator().manual_seed(1), x0.device)
    return {
        "bpd": float(sum(terms.values()).mean() / to_bits),
        "bpd_prior": float(terms["prior"].mean() / to_bits),
        "bpd_diffusion": float(terms["diffusion"].mean() / to_bits),
        "bpd_decoder": float(terms["decoder"].mean() / to_bits),
        **frechet_distances(samples, x0, train, cfg.loss.pca_dim),
    }


def baselines(split: dict, cfg) -> dict[str, dict[str, float]]:
    """What the paper's numbers stand against, on the same images as the model's:
    independent pixels, their exact likelihood on the bound's images and the
    Frechet distance of as many of their samples as the model draws."""
    train = training_images(cfg.data.val_fraction, cfg.data.test_fraction, cfg.data.seed)
    x0 = split["x0"]
    frechet = independent_pixel_frechet(
        x0, train, cfg.loss.num_samples, cfg.loss.pca_dim, torch.Generator().manual_seed(2)
    )
    bpd = independent_pixel_bpd(train, x0[: cfg.loss.bound_images])
    return {"independent_pixels": {"bpd": bpd, "frechet": frechet}}


def memorised(model, batch: dict) -> bool:
    """Every example's noise predicted to a mean squared error below 0.05 (1 at init)."""
    with torch.no_grad():
        error = (model(batch["inputs"]) - batch["noise"]).pow(2).mean(dim=1)
    return bool(error.max() < 0.05)


def expected_loss_at_init(data_spec, batch, cfg) -> float:
    """Untrained, the network's level logits are ~0: every grey level equally likely
    a priori, so the prediction is the noise implied by E[x0 | x_t] under that
    uniform prior (model.py). Its squared error depends on t: ~0 where the noise is
    finer than the levels' gap, ~0.75 in between, ~0 where x_t is all noise."""
    alpha_bars = schedule(data_spec)["alpha_bars"]
    x_t, t = batch["inputs"]["x_t"], batch["inputs"]["t"]
    uniform = torch.zeros(*x_t.shape, data_spec["num_levels"], device=x_t.device)
    x0_hat = level_posterior_mean(x_t, t, alpha_bars, uniform)
    return (noise_from_x0(x_t, t, x0_hat, alpha_bars) - batch["noise"]).pow(2).mean().item()


def grid(images: torch.Tensor, columns: int, size: int) -> torch.Tensor:
    """[K, size*size] images in [-1, 1] tiled row by row into one [H, W] picture,
    with a one-pixel border (value 0, mid grey) around each."""
    tiles = images.clamp(-1, 1).reshape(-1, size, size)
    tiles = torch.nn.functional.pad(tiles, (1, 1, 1, 1), value=0.0)
    rows = tiles.reshape(-1, columns, size + 2, size + 2)  # [rows, columns, h, w]
    return rows.permute(0, 2, 1, 3).reshape(rows.size(0) * (size + 2), columns * (size + 2))


def save_picture(picture: torch.Tensor, path: Path, title: str, column_labels=None) -> None:
    """One grey-scale picture (black -1, white 1) as a .png, with matplotlib."""
    from matplotlib.figure import Figure  # imported here: only summarise draws

    height, width = picture.shape
    fig = Figure(figsize=(width / 12, height / 12 + 0.6))
    axis = fig.add_axes((0.02, 0.02, 0.96, 0.88 if column_labels is None else 0.8))
    axis.imshow(picture.numpy(), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
    axis.set_title(title, fontsize=9)
    axis.set_yticks([])
    if column_labels is None:
        axis.set_xticks([])
    else:
        step = width / len(column_labels)
        axis.set_xticks([step * (i + 0.5) for i in range(len(column_labels))], column_labels)
        axis.xaxis.tick_top()
        axis.tick_params(labelsize=7, length=0)
    fig.savefig(path, dpi=100)


@torch.no_grad()
def summarise(model, splits, run_dir: Path) -> dict[str, float]:
    """After training: ``samples.png`` (64 samples of Algorithm 2) and
    ``trajectory.png`` (8 samples on their way from x_T to x_0, at 10 time steps)."""
    data_spec = model.data_spec  # the schedule it was trained for
    size = data_spec["image_size"]
    device = splits["val"]["x0"].device
    num_steps = data_spec["num_steps"]
    shown = sorted({round(num_steps * k / 9) for k in range(10)}, reverse=True)
    samples, kept = sample(
        model, data_spec, 64, torch.Generator().manual_seed(0), device, keep=shown
    )
    save_picture(grid(samples.cpu(), 8, size), Path(run_dir) / "samples.png", "samples")
    trajectory = torch.stack([kept[t][:8] for t in shown], dim=1).reshape(-1, samples.size(1))
    save_picture(
        grid(trajectory, len(shown), size),
        Path(run_dir) / "trajectory.png",
        "x_t from t = T (left) to 0 (right)",
        column_labels=[f"t={t}" for t in shown],
    )
    return {}
