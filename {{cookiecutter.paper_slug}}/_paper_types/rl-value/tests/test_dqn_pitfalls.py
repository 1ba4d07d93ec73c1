"""DQN pitfalls: TD targets that bootstrap from terminal states or stop at time
limits, a gradient through the target, a target network that is not fixed between
copies (or is the online network itself), a sampler that repeats rows or favours
some, a next state paired off by one, an epsilon that decays on the wrong clock,
a collector that forgets its environment or memory on resume, and Q-values that
start far from 0.

Each of these still "learns" CartPole now and then, which is why they survive into
reproductions; each test below uses inputs on which the wrong version differs.
"""

from __future__ import annotations

import io

import gymnasium as gym
import pytest
import torch

from {{ cookiecutter.package_name }}.data import (
    TRAIN_SEED_RANGE,
    ReplayMemory,
    epsilon_at,
    td_targets,
    train_batches,
)
from {{ cookiecutter.package_name }}.judge.data_checks import (
    nudge,
)
from {{ cookiecutter.package_name }}.loss import (
    loss_fn,
)


def collector(cfg, model, seed: int = 0, batch_size: int = 16, **data):
    """train_batches with some data keys changed."""
    data_cfg = cfg.data.copy()
    for key, value in data.items():
        data_cfg[key] = value
    return train_batches(data_cfg, None, batch_size, torch.Generator().manual_seed(seed), model)


def test_td_targets_by_hand():
    # Next-state values that differ per row and per action: a max over the wrong
    # axis, a mean over actions or the value of the action taken all differ.
    rewards = torch.tensor([1.0, 2.0, 0.5])
    next_q = torch.tensor([[1.0, 3.0], [2.0, -1.0], [5.0, 4.0]])
    terminated = torch.tensor([False, True, False])
    # Row 1 terminated: its target is the reward alone (a bootstrap would add 0.9 * 2).
    expected = [1.0 + 0.9 * 3.0, 2.0, 0.5 + 0.9 * 5.0]
    assert td_targets(rewards, next_q, terminated, 0.9).tolist() == pytest.approx(expected)


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


def row_of(memory, obs: torch.Tensor) -> int:
    """The memory row holding observation ``obs`` (continuous states: unique)."""
    (rows,) = torch.where((memory.obs[: memory.size] == obs).all(dim=1))
    return int(rows[0])


def test_time_limit_ends_are_bootstrapped_and_terminal_ones_are_not(cfg, model, short_cartpole):
    # A target network whose values depend on the state and are far from 0, so a
    # bootstrap and none differ by much.
    with torch.no_grad():
        model.q[-1].bias.fill_(10.0)
    gamma = cfg.data.gamma
    for env_id in (short_cartpole, cfg.data.env_id):
        batches = collector(
            cfg, model, env_id=env_id, learning_starts=60, batch_size=64, memory_size=1000
        )
        batch = next(batches)
        memory = batches.memory
        with torch.no_grad():
            next_max = model(memory.next_obs[: memory.size]).max(dim=1).values
        ends = 0
        for obs, target in zip(batch["inputs"], batch["targets"], strict=True):
            i = row_of(memory, obs)
            if env_id == short_cartpole:
                assert not memory.terminated[i], f"row {i}: a time-limit stop stored as terminal"
            expected = memory.rewards[i] + (0.0 if memory.terminated[i] else gamma * next_max[i])
            assert target.item() == pytest.approx(expected.item(), abs=1e-4), f"row {i}"
            ends += int(memory.terminated[i]) if env_id != short_cartpole else 0
        if env_id == cfg.data.env_id:
            assert ends > 0, "no terminal transition in the batch: nothing was checked"


def test_targets_carry_no_gradient(cfg, model):
    batch = next(collector(cfg, model))
    assert not batch["targets"].requires_grad and batch["targets"].grad_fn is None
    # The loss's gradient reaches the online network only, never the target one.
    batches = collector(cfg, model)
    batch = next(batches)
    loss_fn(model(batch["inputs"]), batch, cfg.loss).backward()
    assert all(p.grad is None for p in batches.target.parameters())
    assert all(p.grad is not None for p in model.parameters())


def weights(module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_target_network_is_fixed_between_copies_and_equals_online_after(cfg, model):
    batches = collector(cfg, model, target_update_every=3)
    next(batches)  # update 0: the first copy
    copied = weights(batches.target)
    assert same(copied, weights(model))
    for update in (1, 2):
        nudge(model)  # the online network trains between batches
        next(batches)
        assert same(weights(batches.target), copied), f"target moved at update {update}"
        assert not same(weights(batches.target), weights(model)), "target is the online net"
    nudge(model)
    next(batches)  # update 3: the second copy
    assert same(weights(batches.target), weights(model))
    # Polyak averaging (target_tau): a fraction tau of the way, every update.
    batches = collector(cfg, model, target_tau=0.25)
    before = weights(batches.target)
    nudge(model)
    next(batches)
    for old, new, online in zip(before, weights(batches.target), weights(model), strict=True):
        assert torch.allclose(new, 0.75 * old + 0.25 * online, atol=1e-6)


def test_replay_samples_distinct_rows_spread_over_the_memory():
    generator = torch.Generator().manual_seed(0)
    memory = ReplayMemory(capacity=2000, obs_dim=1)
    for i in range(1000):  # half full: rows 1000.. are empty
        memory.add([float(i)], 0, 0.0, [float(i)], False)
    drawn = torch.stack([memory.sample(64, generator) for _ in range(50)])
    for rows in drawn:
        assert len(rows.unique()) == 64, "a row twice in one batch"
    assert drawn.max() < 1000, "an empty row was sampled"
    # Every tenth of the memory as often as the others (not the newest rows only).
    tenths = torch.bincount(drawn.flatten() // 100, minlength=10)
    assert tenths.min() > 0.7 * drawn.numel() / 10, tenths.tolist()
    # Full and wrapped around: every row still equally likely.
    memory = ReplayMemory(capacity=100, obs_dim=1)
    for i in range(250):
        memory.add([float(i)], 0, 0.0, [float(i)], False)
    drawn = torch.stack([memory.sample(20, generator) for _ in range(200)])
    assert drawn.max() < 100 and torch.bincount(drawn.flatten() // 25).min() > 0.7 * 1000


def test_stored_next_state_is_what_the_environment_returned_for_that_action(cfg, model):
    batches = collector(cfg, model, learning_starts=200, memory_size=1000)  # no wrap-around
    next(batches)
    memory = batches.memory
    # Replay the first episode: its seed is the data generator's first draw.
    seed = int(torch.randint(TRAIN_SEED_RANGE, (), generator=torch.Generator().manual_seed(0)))
    env = gym.make(cfg.data.env_id)
    obs, _ = env.reset(seed=seed)
    t = 0
    while True:
        assert torch.equal(memory.obs[t], torch.as_tensor(obs)), f"transition {t}: state"
        obs, reward, terminated, truncated, _ = env.step(int(memory.actions[t]))
        assert torch.equal(memory.next_obs[t], torch.as_tensor(obs)), (
            f"transition {t}: not the state the environment returned for this action "
            "(paired off by one, or replaced by the next episode's first state?)"
        )
        assert memory.rewards[t] == reward and memory.terminated[t] == terminated
        if terminated or truncated:
            break
        t += 1
    env.close()
    # Everywhere else: each transition starts where the previous one ended, unless
    # that one ended an episode.
    size = memory.size
    continues = torch.equal(memory.obs[1:size], memory.next_obs[: size - 1])
    linked = (memory.obs[1:size] == memory.next_obs[: size - 1]).all(dim=1)
    assert not continues, "no episode ended in 200 steps: nothing was checked"
    assert linked.sum() >= size - 1 - batches.episodes


def test_epsilon_schedule_values(cfg, model):
    data = cfg.data.copy()
    data.epsilon_start, data.epsilon_end, data.epsilon_decay_steps = 1.0, 0.05, 20_000
    assert epsilon_at(0, data) == 1.0
    assert epsilon_at(10_000, data) == pytest.approx(0.525)
    assert epsilon_at(20_000, data) == pytest.approx(0.05)
    assert epsilon_at(60_000, data) == pytest.approx(0.05)  # held, not extrapolated
    # The collector's clock is environment steps, not gradient steps.
    schedule = {"epsilon_start": 1.0, "epsilon_end": 0.05, "epsilon_decay_steps": 1000}
    batches = collector(cfg, model, learning_starts=500, **schedule)
    for _ in range(5):
        next(batches)
    env_steps = 500 + 5 * cfg.data.train_every
    assert batches.scalars()["epsilon"] == pytest.approx(1.0 - 0.95 * env_steps / 1000)
    # Epsilon 0: every action after the warm-up is the online network's greedy one.
    batches = collector(cfg, model, learning_starts=50, epsilon_start=0.0, epsilon_end=0.0)
    next(batches)
    memory, steps = batches.memory, slice(50, 50 + cfg.data.train_every)
    with torch.no_grad():
        greedy = model(memory.obs[steps]).argmax(dim=1)
    assert torch.equal(memory.actions[steps], greedy)


def test_collector_state_round_trip(cfg, model):
    small = {"memory_size": 48, "learning_starts": 32, "target_update_every": 3, "train_every": 4}
    first = collector(cfg, model, **small)
    for _ in range(5):  # 52 transitions: the memory has wrapped around
        next(first)
    assert first.memory.size == 48 and first.memory.position == 4
    state = first.state_dict()
    assert state["env"] is not None, "saved between episodes: the live env is not checked"
    buffer = io.BytesIO()
    torch.save({"batches": state, "rng": first.generator.get_state()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)  # what a checkpoint must survive
    nudge(model)  # training goes on between the checkpoint and the resume
    resumed = collector(cfg, model, seed=1, **small)  # another seed: only the load helps
    resumed.load_state_dict(saved["batches"])
    resumed.generator.set_state(saved["rng"])
    for i in range(4):  # across the next target copy (update 6)
        a, b = next(first), next(resumed)
        for key in a:
            assert torch.equal(a[key], b[key]), f"batch {i} after the resume: {key}"
    assert first.scalars() == resumed.scalars()


def test_q_values_start_near_zero(model, batch):
    # Then the first targets are about the rewards; an initial guess far from 0
    # (the default output-layer init) is spread through the memory by bootstrapping.
    with torch.no_grad():
        assert model(batch["inputs"]).abs().max() < 0.05
