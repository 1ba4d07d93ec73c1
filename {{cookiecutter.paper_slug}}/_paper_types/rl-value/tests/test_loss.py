"""Loss (phase 3): the TD regression on known values, and evaluation episodes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from {{ cookiecutter.package_name }}.data import (
    greedy_episodes,
)
from {{ cookiecutter.package_name }}.loss import (
    LossConfig,
    huber,
    loss_fn,
    metrics_fn,
    split_metrics,
    summarise,
)

HUBER = LossConfig(kind="huber", huber_delta=1.0)
MSE = LossConfig(kind="mse", huber_delta=1.0)


def test_huber_known_values():
    # A large negative error too: |e| - 0.5 and e - 0.5 agree on every positive one.
    errors = torch.tensor([0.0, 0.5, -1.0, 3.0, -3.0])
    assert huber(errors).tolist() == [0.0, 0.125, 0.5, 2.5, 2.5]
    # delta 2: quadratic up to 2, then 2 * (|e| - 1) (value and slope continuous).
    assert huber(errors, delta=2.0).tolist() == [0.0, 0.125, 0.5, 4.0, 4.0]


def test_loss_on_known_values():
    # Q-values that differ per row and per action, so Q of the wrong action, or of
    # every action (``q[:, actions]`` broadcasts to [B, B]), gives another number.
    q = torch.tensor([[1.0, 2.0], [0.0, -1.0], [4.0, 3.0]])
    batch = {"actions": torch.tensor([1, 0, 0]), "targets": torch.tensor([1.5, 3.0, 1.0])}
    errors = [0.5, -3.0, 3.0]  # Q(s, a) - target per row
    assert loss_fn(q, batch, HUBER).item() == pytest.approx((0.125 + 2.5 + 2.5) / 3)
    assert loss_fn(q, batch, MSE).item() == pytest.approx(sum(0.5 * e**2 for e in errors) / 3)


def test_huber_clips_the_gradient_of_large_errors_and_mse_does_not():
    q = torch.tensor([[10.0, 0.0]], requires_grad=True)
    batch = {"actions": torch.tensor([0]), "targets": torch.tensor([0.0])}
    for cfg, slope in ((HUBER, 1.0), (MSE, 10.0)):
        (grad,) = torch.autograd.grad(loss_fn(q, batch, cfg), q)
        assert grad.tolist() == [[slope, 0.0]], cfg.kind  # only the action taken


def test_evaluation_plays_one_greedy_episode_per_seed(model, splits, cfg):
    seeds = splits["val"]["seed"][:3].tolist()
    first = [sum(e["rewards"]) for e in greedy_episodes(cfg.data.env_id, model, seeds)]
    again = [sum(e["rewards"]) for e in greedy_episodes(cfg.data.env_id, model, seeds)]
    assert len(first) == 3 and first == again, "greedy episodes must repeat exactly"


def test_split_metrics_report_the_mean_and_the_worst_greedy_episode(model, splits, cfg):
    # The mean return hides a start state the policy fails from; the worst does not.
    seeds = {"seed": splits["val"]["seed"][:4]}
    episodes = greedy_episodes(cfg.data.env_id, model, seeds["seed"].tolist())
    returns = [sum(e["rewards"]) for e in episodes]
    starts = torch.tensor(np.array([e["first_obs"] for e in episodes]))
    with torch.no_grad():
        q_start = model(starts).max(dim=1).values.mean().item()
    assert max(returns) > min(returns), "equal returns: min and mean cannot differ"
    assert metrics_fn(model, seeds) == {}  # each evaluation plays the episodes once
    assert split_metrics(model, seeds, cfg) == pytest.approx(
        {
            "return": sum(returns) / 4,
            "length": sum(len(e["rewards"]) for e in episodes) / 4,
            "worst_return": min(returns),
            "q_start": q_start,
        }
    )


def test_summary_compares_q_at_the_start_with_the_discounted_return(model, splits, tmp_path):
    summary = summarise(model, splits, tmp_path)
    episodes = greedy_episodes(model.env_id, model, splits["val"]["seed"].tolist())
    # CartPole pays 1 per step: the discounted return of L steps is (1 - g^L) / (1 - g).
    g = model.gamma
    expected = sum((1 - g ** len(e["rewards"])) / (1 - g) for e in episodes) / len(episodes)
    assert summary["discounted_return"] == pytest.approx(expected, rel=1e-5)

    assert len((tmp_path / "episodes.txt").read_text().splitlines()) == len(episodes)
