"""Loss (phase 3): each term on known values, and evaluation episodes."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Categorical

from {{ cookiecutter.package_name }}.loss import (
    LossConfig,
    entropy,
    greedy_returns,
    huber,
    loss_fn,
    metrics_fn,
    policy_loss,
    split_metrics,
)

PLAIN = LossConfig(value_weight=0.5, entropy_weight=0.01)


def test_huber_known_values():
    # A large negative error too: |e| - 0.5 and e - 0.5 agree on every positive one.
    errors = torch.tensor([0.0, 0.5, -1.0, 3.0, -3.0])
    assert huber(errors).tolist() == [0.0, 0.125, 0.5, 2.5, 2.5]


def test_loss_on_known_values():
    # Action probabilities that differ between rows, (1/4, 3/4) and (1/2, 1/2): with
    # the same probabilities everywhere, log pi of the wrong action, or of every
    # action (``log_probs[:, actions]`` broadcasts to [T, T]), gives the right number.
    skewed = [0.0, math.log(3)]
    outputs = {"logits": torch.tensor([skewed, skewed, [0.0, 0.0]]), "value": torch.zeros(3)}
    batch = {
        "actions": torch.tensor([0, 1, 1]),
        "advantages": torch.tensor([1.0, -1.0, 3.0]),
        "returns": torch.tensor([0.5, 2.0, 1.0]),
    }
    log_pi = [math.log(1 / 4), math.log(3 / 4), math.log(1 / 2)]  # of the actions taken
    policy = -(1.0 * log_pi[0] - 1.0 * log_pi[1] + 3.0 * log_pi[2]) / 3
    value = (0.125 + 1.5 + 0.5) / 3  # values 0: the mean Huber loss of the returns
    skewed_entropy = -(1 / 4 * math.log(1 / 4) + 3 / 4 * math.log(3 / 4))
    bonus = (2 * skewed_entropy + math.log(2)) / 3
    expected = policy + PLAIN.value_weight * value - PLAIN.entropy_weight * bonus
    assert loss_fn(outputs, batch, PLAIN).item() == pytest.approx(expected)


def test_log_probabilities_and_entropy_equal_torch_distributions():
    # The reference (torch.distributions is fine in tests, not in loss.py): logits
    # that differ per row and per action, so a softmax over the wrong axis differs.
    logits = torch.tensor([[0.0, 1.0, -2.0], [3.0, 0.5, 0.0]])
    actions = torch.tensor([2, 0])
    reference = Categorical(logits=logits)
    assert torch.allclose(entropy(logits), reference.entropy(), atol=1e-6)
    advantages = torch.tensor([1.0, 1.0])
    expected = -reference.log_prob(actions).mean()
    assert torch.allclose(policy_loss(logits, actions, advantages), expected, atol=1e-6)


def test_evaluation_plays_one_greedy_episode_per_seed(model, splits, cfg):
    seeds = splits["val"]["seed"][:3].tolist()
    first, length = greedy_returns(cfg.data.env_id, model, seeds)
    again, _ = greedy_returns(cfg.data.env_id, model, seeds)
    assert first.shape == (3,)
    assert torch.equal(first, again), "greedy episodes must repeat exactly"
    # CartPole pays 1 per step survived.
    assert torch.equal(first, length)


def test_split_metrics_report_the_mean_and_the_worst_greedy_episode(model, splits, cfg):
    # The mean return hides a start state the policy fails from; the worst does not.
    seeds = {"seed": splits["val"]["seed"][:4]}
    returns, lengths = greedy_returns(cfg.data.env_id, model, seeds["seed"].tolist())
    assert returns.max() > returns.min(), "equal returns: min and mean cannot differ"
    assert metrics_fn(model, seeds) == {}  # each evaluation plays the episodes once
    assert split_metrics(model, seeds, cfg) == {
        "return": returns.mean().item(),
        "length": lengths.mean().item(),
        "worst_return": returns.min().item(),
    }
