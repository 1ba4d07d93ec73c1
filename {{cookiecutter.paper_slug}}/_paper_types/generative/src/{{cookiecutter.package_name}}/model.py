"""Model: a variational autoencoder (Kingma & Welling, 2014) from its parts.

Encoder: x -> hidden layers -> (mu, logvar), the mean and log-variance of a
diagonal Gaussian posterior q(z | x). Decoder: z -> hidden layers -> one logit per
pixel of a Bernoulli likelihood p(x | z). The prior p(z) is a standard normal.

The reparameterisation: z = mu + sigma * eps with eps ~ N(0, I) and
sigma = exp(0.5 * logvar). Written this way (``Normal(mu, sigma).rsample()``) the
sample is a differentiable function of mu and sigma, so the reconstruction loss
sends gradients back into the encoder. ``.sample()`` would cut that path: the
encoder would then learn from the KL term alone and the model would ignore z.

The encoder predicts log-variance rather than sigma: it can be any real number, and
exp() turns it into a positive scale without a constraint or a clamp.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import MISSING
from torch import nn
from torch.distributions import Normal


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class VAE(nn.Module):
    def __init__(self, num_pixels: int, hidden: list[int], latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = mlp([num_pixels, *hidden])
        self.to_mu = nn.Linear(hidden[-1], latent_dim)
        self.to_logvar = nn.Linear(hidden[-1], latent_dim)
        self.decoder = mlp([latent_dim, *hidden[::-1], num_pixels])
        # Small output layers: at initialisation mu ~ 0 and logvar ~ 0 (posterior =
        # prior, KL ~ 0) and the pixel logits ~ 0 (p = 0.5), so the loss starts at
        # about num_pixels * ln 2.
        for head in (self.to_mu, self.to_logvar, self.decoder[-1]):
            nn.init.normal_(head.weight, std=0.01)
            nn.init.zeros_(head.bias)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.encoder(x))
        return self.to_mu(h), self.to_logvar(h)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> dict:
        """x: [N, num_pixels] -> pixel logits [N, num_pixels], mu and logvar [N, latent].

        ``noise`` (standard normal, [N, latent]) fixes eps for a repeatable
        evaluation; by default a fresh eps is drawn.
        """
        mu, logvar = self.encode(x)
        sigma = torch.exp(0.5 * logvar)
        # validate_args=False: a NaN here is reported by the training loop's guard,
        # which names the step, instead of a distribution's argument check.
        eps_sample = Normal(mu, sigma, validate_args=False).rsample
        z = eps_sample() if noise is None else mu + sigma * noise
        return {"logits": self.decoder(z), "mu": mu, "logvar": logvar}


@dataclass
class ModelConfig:
    """The keys of configs/model/*.yaml and their types (see configs/schema.py)."""

    hidden: list[int] = MISSING
    latent_dim: int = MISSING


def build_model(cfg, data_spec: dict[str, int]) -> VAE:
    """Build the model from ``cfg.model`` and the sizes given by ``data.spec``."""
    return VAE(
        num_pixels=data_spec["num_pixels"], hidden=list(cfg.hidden), latent_dim=cfg.latent_dim
    )
