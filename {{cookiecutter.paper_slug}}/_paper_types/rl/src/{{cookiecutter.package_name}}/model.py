"""Model: a policy network and a value network (the baseline), from their parts.

The policy maps an observation to one logit per action; the action is drawn from
softmax(logits) while training and taken as the most likely one when evaluating.
The value network estimates the expected return from an observation; subtracting
it from the return (the advantage) leaves the policy gradient unbiased and lowers
its variance.

Two separate networks rather than one shared body with two heads: the value
regression targets are returns of size ~100, and their gradients would otherwise
swamp the policy's in the shared layers (and in the global gradient clipping).

The model also records which environment it acts in (``env_id``, taken from the
data config): evaluation plays episodes in it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import MISSING
from torch import nn


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with tanh between them (none after the last). tanh keeps the
    small networks of classic control smooth; ReLU works too."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    def __init__(self, obs_dim: int, num_actions: int, hidden: list[int], env_id: str):
        super().__init__()
        self.env_id = env_id
        self.policy = mlp([obs_dim, *hidden, num_actions])
        self.value = mlp([obs_dim, *hidden, 1])
        # A near-zero policy output layer makes the initial policy uniform: every
        # action equally likely, entropy ln(num_actions), exploration from step 1.
        # A near-zero value output layer starts the baseline at about 0. (Exactly
        # zero weights would block every gradient into the value network's lower
        # layers at the first step: tests/test_gradients.py catches that.)
        for head in (self.policy[-1], self.value[-1]):
            nn.init.normal_(head.weight, std=0.01)
            nn.init.zeros_(head.bias)

    def forward(self, obs: torch.Tensor) -> dict[str, torch.Tensor]:
        """obs [T, obs_dim] -> action logits [T, num_actions] and values [T]."""
        return {"logits": self.policy(obs), "value": self.value(obs).squeeze(-1)}


@dataclass
class ModelConfig:
    """The keys of configs/model/*.yaml and their types (see configs/schema.py)."""

    hidden: list[int] = MISSING
    env_id: str = MISSING


def build_model(cfg, data_spec: dict[str, int]) -> ActorCritic:
    """Build the model from ``cfg.model`` and the sizes given by ``data.spec``."""
    return ActorCritic(
        obs_dim=data_spec["obs_dim"],
        num_actions=data_spec["num_actions"],
        hidden=list(cfg.hidden),
        env_id=cfg.env_id,
    )
