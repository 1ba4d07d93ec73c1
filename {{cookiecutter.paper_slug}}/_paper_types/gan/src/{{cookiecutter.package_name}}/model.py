"""Model: the two players of WGAN-GP (Gulrajani et al., 2017), as MLPs.

    generator  z ~ N(0, I) [N, noise_dim] -> Linear, ReLU, ..., Linear -> tanh -> [N, 64]
    critic     x [N, 64] -> Linear, LeakyReLU, ..., Linear (no bias) -> one score per image [N]

The paper's image models are convolutional (a ResNet for CIFAR-10); its toy
experiments, like these 8x8 digits, use MLPs. The generator ends in tanh, so its
images lie in (-1, 1) as the real ones do (data.py). The critic ends in a plain
linear layer: a Wasserstein critic outputs an unbounded score, not a probability
(no sigmoid, unlike the original GAN's discriminator).

Why the critic has no batch normalisation: the gradient penalty (loss.py) asks
that each image's score have a gradient of norm 1 with respect to that image alone.
Batch norm makes every score depend on the whole batch, so the gradient of one
score reaches the other images and the per-example norm is no longer the one the
penalty means (the paper, section 4, "No critic batch normalization").
Nothing here mixes examples; tests/test_gan_pitfalls.py checks it in training mode,
where batch norm would show. Layer normalisation would be allowed (per example),
and is not needed at this size. LeakyReLU rather than ReLU: no unit is ever dead,
so no part of the input gradient the penalty constrains is switched off.

The two players are the submodules ``generator`` and ``critic``; every trainable
parameter belongs to exactly one of them, which is how the loop gives each its own
optimiser (loss.PLAYERS). ``forward(x)`` is the critic's score of each image,
what the generic checks call the model's output. The model draws no noise in
training: z comes with the batch (data.py, where ``noise_dim`` is set), and only
``sample`` draws its own, from the generator it is handed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import MISSING
from torch import nn


def mlp(sizes: list[int], activation, last_bias: bool = True) -> nn.Sequential:
    """Linear layers with ``activation()`` between them (none after the last, whose
    bias ``last_bias`` switches)."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        last = i == len(sizes) - 2
        layers.append(nn.Linear(n_in, n_out, bias=last_bias or not last))
        if not last:
            layers.append(activation())
    return nn.Sequential(*layers)


class Generator(nn.Module):
    def __init__(self, noise_dim: int, hidden: list[int], num_pixels: int):
        super().__init__()
        self.noise_dim = noise_dim
        self.net = mlp([noise_dim, *hidden, num_pixels], nn.ReLU)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z [N, noise_dim] -> images [N, num_pixels] in (-1, 1)."""
        return torch.tanh(self.net(z))


class Critic(nn.Module):
    def __init__(self, num_pixels: int, hidden: list[int]):
        super().__init__()
        # No bias on the score: both losses and every metric use scores only as
        # differences (real minus generated), so a bias would get a gradient of
        # exactly 0 from the critic's loss and never train.
        self.net = mlp([num_pixels, *hidden, 1], lambda: nn.LeakyReLU(0.2), last_bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images [N, num_pixels] -> one unbounded score per image [N]."""
        return self.net(x).squeeze(-1)


class WGAN(nn.Module):
    def __init__(self, data_spec: dict, generator_hidden: list[int], critic_hidden: list[int]):
        super().__init__()
        # The sizes it was built for: summarise() is handed the model, not the config.
        self.data_spec = dict(data_spec)
        num_pixels = data_spec["num_pixels"]
        self.generator = Generator(data_spec["noise_dim"], generator_hidden, num_pixels)
        self.critic = Critic(num_pixels, critic_hidden)

    @property
    def noise_dim(self) -> int:
        return self.generator.noise_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The critic's score of each image x [N, num_pixels] -> [N]."""
        return self.critic(x)

    @torch.no_grad()
    def sample(self, n: int, like: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        """n generated images [n, num_pixels] of ``like``'s dtype and device, their
        noise z ~ N(0, I) from ``rng`` (on the CPU, then moved: a seeded generator
        gives the same samples at every evaluation, the global one untouched)."""
        z = torch.randn(n, self.noise_dim, generator=rng, dtype=like.dtype)
        return self.generator(z.to(like.device))


@dataclass
class ModelConfig:
    """The keys of configs/model/*.yaml and their types (see configs/schema.py)."""

    generator_hidden: list[int] = MISSING
    critic_hidden: list[int] = MISSING


def build_model(cfg, data_spec: dict) -> WGAN:
    """Build the model from ``cfg.model`` and the sizes given by ``data.spec``
    (noise_dim among them: z comes with the batch)."""
    return WGAN(
        data_spec,
        generator_hidden=list(cfg.generator_hidden),
        critic_hidden=list(cfg.critic_hidden),
    )
