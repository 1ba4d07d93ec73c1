"""Model: the noise predictor eps_theta(x_t, t) of DDPM (Ho et al., 2020), as an MLP
that knows the pixels are grey levels.

The paper's network is a U-Net over 32x32 images; for 8x8 digits (64 numbers) a
residual MLP does the same job at a fraction of the cost. What it keeps from the
paper is how the time step enters:

    e = sinusoid(t)                           the Transformer's position encoding of t
    e = Linear(SiLU(Linear(e)))               a small MLP on it
    h = Linear(x_t)
    h = h + Linear(SiLU(Linear(SiLU(LayerNorm(h))) + Linear(e)))   per residual block
    logits = Linear(SiLU(LayerNorm(h)))       [B, 64, 17]: a prior over each pixel's level

Every block is told t: one network serves all T noise levels, and what it must
remove from x_t depends on how much noise t put there. With t ignored (a constant
embedding, or ``use_time: false``, the ablation) the network can only guess the
noise level from x_t itself (the Bayes step after it still knows t).

Why the output is a prior over grey levels and not eps itself: the digits have 17
levels 1/8 apart, and the paper's schedule starts with noise of std 0.01. Below a
std of ~0.06, x_t sits next to the level x0 came from, and the right eps is
(x_t - sqrt(abar_t) * nearest level) / sqrt(1 - abar_t): a sawtooth in x_t with a
slope of up to 100, which an MLP predicting eps directly does not learn. Measured:
its bound was 4.14 bits per pixel, worse than uniform pixels (log2 17 = 4.09), and
2.6 of those bits came from the first 20 of the 1000 steps, where the exact
denoiser of independent pixels spends 1.1. (The paper's 256 levels of CIFAR10
are 0.008 apart, finer than its first noise step, so it never meets the sawtooth.)
Here Bayes' rule does the rounding exactly (data.level_posterior_mean): the prior
the network's logits give, times each level's Gaussian likelihood q(x_t | x0 =
level), gives E[x0 | x_t], and the predicted noise is the eps that noises that x0
into x_t. The network's part is what Bayes' rule cannot know: which levels are
likely, given the rest of the image. It is still trained on L_simple and still
predicts eps.

The output layer starts small, so that the untrained logits are ~0 (every level
alike) and the loss at init is that of the uniform prior (tests/test_init.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from omegaconf import MISSING
from torch import nn

from .data import level_posterior_mean, noise_from_x0, schedule


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoids of the integer time steps t [B] -> [B, dim]: sin(t w_k) then
    cos(t w_k), with frequencies w_k = 10000^(-k / (dim/2)) from 1 down to ~1e-4,
    so that neighbouring steps differ (fast sinusoids) and far ones too (slow)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    angles = t.float().unsqueeze(1) * frequencies.unsqueeze(0)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class ResidualBlock(nn.Module):
    def __init__(self, width: int, time_width: int | None):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.time = nn.Linear(time_width, width) if time_width else None
        self.fc2 = nn.Linear(width, width)

    def forward(self, h: torch.Tensor, time: torch.Tensor | None) -> torch.Tensor:
        u = self.fc1(torch.nn.functional.silu(self.norm(h)))
        if self.time is not None:
            u = u + self.time(time)  # the time step shifts every block's features
        return h + self.fc2(torch.nn.functional.silu(u))


class Denoiser(nn.Module):
    def __init__(self, data_spec: dict, width: int, num_blocks: int, time_dim: int, use_time: bool):
        super().__init__()
        # The sizes and the noise schedule the model is trained for: summarise()
        # samples with them after training, and it is handed the model, not the config.
        self.data_spec = dict(data_spec)
        num_pixels, self.num_levels = data_spec["num_pixels"], data_spec["num_levels"]
        # The forward process the Bayes step inverts: a float64 table, not a buffer
        # (not in the state dict, not cast by .to(dtype)); moved where it is used.
        self.alpha_bars = schedule(data_spec)["alpha_bars"]
        self.time_dim = time_dim if use_time else 0
        self.time_mlp = (
            nn.Sequential(nn.Linear(time_dim, width), nn.SiLU(), nn.Linear(width, width))
            if use_time
            else None
        )
        self.inp = nn.Linear(num_pixels, width)
        self.blocks = nn.ModuleList(
            ResidualBlock(width, width if use_time else None) for _ in range(num_blocks)
        )
        self.out_norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, num_pixels * self.num_levels)
        nn.init.normal_(self.out.weight, std=0.001)
        nn.init.zeros_(self.out.bias)

    def level_logits(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The network's prior over each pixel's grey level, [B, num_pixels, levels]."""
        time = None
        if self.time_mlp is not None:
            time = self.time_mlp(timestep_embedding(inputs["t"], self.time_dim))
        h = self.inp(inputs["x_t"])
        for block in self.blocks:
            h = block(h, time)
        logits = self.out(torch.nn.functional.silu(self.out_norm(h)))
        return logits.reshape(*inputs["x_t"].shape, self.num_levels)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """{"x_t": [B, num_pixels] float, "t": [B] int64} -> eps_hat [B, num_pixels]."""
        x_t, t = inputs["x_t"], inputs["t"]
        x0_hat = level_posterior_mean(x_t, t, self.alpha_bars, self.level_logits(inputs))
        return noise_from_x0(x_t, t, x0_hat, self.alpha_bars)


@dataclass
class ModelConfig:
    """The keys of configs/model/*.yaml and their types (see configs/schema.py)."""

    width: int = MISSING
    num_blocks: int = MISSING
    time_dim: int = MISSING  # sinusoids: time_dim / 2 frequencies, sin and cos
    use_time: bool = MISSING


def build_model(cfg, data_spec: dict) -> Denoiser:
    """Build the model from ``cfg.model`` and the sizes given by ``data.spec``."""
    return Denoiser(
        data_spec,
        width=cfg.width,
        num_blocks=cfg.num_blocks,
        time_dim=cfg.time_dim,
        use_time=cfg.use_time,
    )
