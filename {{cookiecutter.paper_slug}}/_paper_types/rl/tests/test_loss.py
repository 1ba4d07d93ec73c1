"""Loss (phase 3): each term on known values, and evaluation episodes."""

from __future__ import annotations

import math

import pytest
import torch

from {{ cookiecutter.package_name }}.loss import (
    LossConfig,
    huber,
    loss_fn,
    metrics_fn,
)

PLAIN = LossConfig(value_weight=0.5, entropy_weight=0.01)


def test_huber_known_values():
    errors = torch.tensor([0.0, 0.5, -1.0, 3.0])
    assert huber(errors).tolist() == [0.0, 0.125, 0.5, 2.5]


def test_loss_on_known_values():
    # Uniform policy over 2 actions, values 0: policy term = ln 2 * mean(advantage),
    # value term = mean huber(returns), entropy = ln 2.
    outputs = {"logits": torch.zeros(3, 2), "value": torch.zeros(3)}
    batch = {
        "actions": torch.tensor([0, 1, 1]),
        "advantages": torch.tensor([1.0, -1.0, 3.0]),
        "returns": torch.tensor([0.5, 2.0, 1.0]),
    }
    policy = math.log(2) * (1.0 - 1.0 + 3.0) / 3
    value = (0.125 + 1.5 + 0.5) / 3
    expected = policy + PLAIN.value_weight * value - PLAIN.entropy_weight * math.log(2)
    assert loss_fn(outputs, batch, PLAIN).item() == pytest.approx(expected)


def test_evaluation_plays_one_greedy_episode_per_seed(model, splits):
    seeds = {"seed": splits["val"]["seed"][:3]}
    first, again = metrics_fn(model, seeds), metrics_fn(model, seeds)
    assert first["return"].shape == (3,)
    assert torch.equal(first["return"], again["return"]), "greedy episodes must repeat exactly"
    # CartPole pays 1 per step survived.
    assert torch.equal(first["return"], first["length"])
