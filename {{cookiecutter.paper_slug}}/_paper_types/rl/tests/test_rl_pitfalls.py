"""RL pitfalls: returns that leak across episodes or ignore time limits, a flipped
policy-gradient sign, advantage normalisation that breaks on small batches, an
initial policy that does not explore, and rollouts that cannot be reproduced.

Each of these still "learns" something on an easy task, which is why they survive
into reproductions and only show on the paper's harder ones.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from {{ cookiecutter.package_name }} import (
    data as rl_data,
)
from {{ cookiecutter.package_name }}.data import (
    discounted_returns,
    normalise,
    run_episodes,
    train_batches,
)
from {{ cookiecutter.package_name }}.loss import (
    entropy,
    policy_loss,
)


def test_discounted_returns_by_hand():
    # One episode: G2 = 1, G1 = 1 + 0.5 * 1, G0 = 1 + 0.5 * 1.5.
    assert discounted_returns([1, 1, 1], [False, False, True], 0.5).tolist() == [1.75, 1.5, 1.0]
    # Two episodes: the second one's reward must not leak into the first.
    assert discounted_returns([1, 2, 3], [False, True, True], 0.5).tolist() == [2.0, 2.0, 3.0]


def test_truncated_episodes_bootstrap_and_terminated_ones_do_not():
    rewards, ends = [1.0, 1.0], [False, True]
    # Terminated: nothing follows the last step.
    assert discounted_returns(rewards, ends, 0.5, tails=[0.0, 0.0]).tolist() == [1.5, 1.0]
    # Truncated by a time limit: the value of the next state (here 4) follows.
    assert discounted_returns(rewards, ends, 0.5, tails=[0.0, 4.0]).tolist() == [2.5, 3.0]


@pytest.fixture
def short_cartpole():
    """CartPole cut off after 5 steps: too short for the pole to fall, so every
    episode ends truncated, never terminated."""
    env_id = "CartPoleFiveSteps-v0"
    gym.register(
        id=env_id, entry_point="gymnasium.envs.classic_control:CartPoleEnv", max_episode_steps=5
    )
    yield env_id
    gym.registry.pop(env_id)


def test_rollouts_tell_truncated_from_terminated(model, cfg, short_cartpole, monkeypatch):
    (episode,) = run_episodes(short_cartpole, model, [0], greedy=True)
    assert len(episode) == 5
    assert not any(step[4] for step in episode), "a time-limit stop is not a termination"
    # The truncated return must bootstrap from the value of the state *after* the
    # last step. The inputs are chosen so that the wrong candidates disagree:
    # - a value head that depends on the state (large output weights): with a
    #   constant one, value(next obs) == value(last obs) and a bootstrap from the
    #   last observation instead of the next one would pass;
    # - two episodes in one batch: with one, returns that run on across the end of
    #   an episode into the next one look the same as returns that stop there;
    # - gamma = 0.99, not 1.
    with torch.no_grad():
        model.value[-1].weight.normal_(std=10.0, generator=torch.Generator().manual_seed(0))
    played = []  # the episodes train_batches plays, with each step's next observation

    def recording_run_episodes(*args, **kwargs):
        episodes = run_episodes(*args, **kwargs)
        played.extend(episodes)
        return episodes

    monkeypatch.setattr(rl_data, "run_episodes", recording_run_episodes)
    data_cfg = cfg.data.copy()
    data_cfg.env_id, data_cfg.normalize_advantages = short_cartpole, False
    batch = next(train_batches(data_cfg, None, 2, torch.Generator().manual_seed(0), model))
    assert [len(episode) for episode in played] == [5, 5]

    def values(observations) -> torch.Tensor:
        with torch.no_grad():
            return model(torch.as_tensor(np.array(observations), dtype=torch.float32))["value"]

    after_last = values([episode[-1][3] for episode in played])
    last = values([episode[-1][0] for episode in played])
    assert (after_last - last).abs().min() > 0.1, "these inputs cannot tell the two states apart"
    gamma = data_cfg.gamma
    returns = batch["returns"].view(2, 5)
    for i in range(2):
        assert returns[i, -1].item() == pytest.approx(1.0 + gamma * after_last[i].item(), abs=1e-4)
        expected_first = sum(gamma**k for k in range(5)) + gamma**5 * after_last[i].item()
        assert returns[i, 0].item() == pytest.approx(expected_first, abs=1e-4)


def test_policy_gradient_raises_the_rewarded_arm_on_a_bandit():
    # Arm 0 pays 1, arm 1 pays 0. Play both arms from a uniform policy, take one
    # gradient step on the loss: arm 0 must become more likely. The same step on
    # the loss with its sign flipped must make it less likely.
    def p_arm0_after_one_step(sign: float) -> float:
        logits = torch.zeros(2, requires_grad=True)
        actions = torch.tensor([0, 1, 0, 1])
        rewards = (actions == 0).float()
        advantages = normalise(rewards)
        loss = sign * policy_loss(logits.expand(4, 2), actions, advantages)
        loss.backward()
        with torch.no_grad():
            return (logits - 0.5 * logits.grad).softmax(dim=0)[0].item()

    assert p_arm0_after_one_step(+1.0) > 0.5
    assert p_arm0_after_one_step(-1.0) < 0.5


def test_advantage_normalisation_and_a_batch_of_one():
    advantages = 3 * torch.randn(100, generator=torch.Generator().manual_seed(0)) + 2
    normalised = normalise(advantages)
    assert normalised.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert normalised.pow(2).mean().sqrt().item() == pytest.approx(1.0, abs=1e-4)
    one = normalise(torch.tensor([5.0]))
    assert torch.isfinite(one).all() and one.item() == 0.0


def test_initial_policy_is_uniform(model, batch, data_spec):
    uniform = math.log(data_spec["num_actions"])
    assert entropy(torch.zeros(1, data_spec["num_actions"])).item() == pytest.approx(uniform)
    with torch.no_grad():
        assert entropy(model(batch["inputs"])["logits"]).min().item() == pytest.approx(
            uniform, abs=1e-3
        )


def test_seeded_rollouts_repeat_exactly(cfg, model):
    def draw(seed: int):
        return next(train_batches(cfg.data, None, 3, torch.Generator().manual_seed(seed), model))

    first, again, other = draw(0), draw(0), draw(1)
    for name in first:
        assert torch.equal(first[name], again[name]), name
    assert not torch.equal(first["actions"][:20], other["actions"][:20]) or len(
        first["actions"]
    ) != len(other["actions"])
