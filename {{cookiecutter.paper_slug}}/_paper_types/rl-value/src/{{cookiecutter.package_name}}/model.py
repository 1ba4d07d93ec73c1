"""Model: the Q-network, an MLP from an observation to one value per action.

Q(s, a) estimates the discounted return of taking action a in state s and acting
greedily afterwards. The greedy policy is argmax_a Q(s, a); the training data's
epsilon-greedy agent (data.py) and evaluation (loss.py) both act with it.

This is the online network, the one the loop trains. The target network is a copy
of it that the data iterator keeps (data.ReplayBatches), not a part of this module:
the loop, the optimiser and the checkpoint's "model" see only the trained weights.

The model also records which environment it acts in and the discount its Q-values
are sums under (``env_id`` and ``gamma``, taken from the data config): evaluation
plays episodes in it, and ``loss.summarise`` compares Q with discounted returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import MISSING
from torch import nn


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last: Q-values are
    unbounded, of either sign)."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class QNetwork(nn.Module):
    def __init__(
        self, obs_dim: int, num_actions: int, hidden: list[int], env_id: str, gamma: float
    ):
        super().__init__()
        self.env_id, self.gamma = env_id, gamma
        self.q = mlp([obs_dim, *hidden, num_actions])
        # A near-zero output layer starts every Q-value near 0: the first TD
        # targets are then about the rewards themselves, instead of rewards plus
        # gamma times an arbitrary initial guess that bootstrapping would spread
        # through the memory. (Not exactly zero: that would block every gradient
        # into the lower layers at the first step; tests/test_gradients.py.)
        nn.init.normal_(self.q[-1].weight, std=0.01)
        nn.init.zeros_(self.q[-1].bias)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """obs [B, obs_dim] -> Q-values [B, num_actions]."""
        return self.q(obs)


@dataclass
class ModelConfig:
    """The keys of configs/model/*.yaml and their types (see configs/schema.py)."""

    hidden: list[int] = MISSING
    env_id: str = MISSING
    gamma: float = MISSING


def build_model(cfg, data_spec: dict[str, int]) -> QNetwork:
    """Build the model from ``cfg.model`` and the sizes given by ``data.spec``."""
    return QNetwork(
        obs_dim=data_spec["obs_dim"],
        num_actions=data_spec["num_actions"],
        hidden=list(cfg.hidden),
        env_id=cfg.env_id,
        gamma=cfg.gamma,
    )
