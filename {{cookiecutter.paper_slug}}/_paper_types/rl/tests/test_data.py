"""Data (phase 1): evaluation seeds held out, training batches well formed."""

from __future__ import annotations

import numpy as np
import torch

from {{ cookiecutter.package_name }} import (
    data as rl_data,
)
from {{ cookiecutter.package_name }}.data import (
    TRAIN_SEED_RANGE,
    train_batches,
)


def test_evaluation_splits_hold_disjoint_seeds_never_drawn_for_training(
    cfg, splits, data_spec, model, monkeypatch
):
    val, test = splits["val"]["seed"], splits["test"]["seed"]
    assert len(val) == cfg.data.val_episodes and len(test) == cfg.data.test_episodes
    assert not set(val.tolist()) & set(test.tolist())
    assert min(val.min(), test.min()) >= TRAIN_SEED_RANGE
    # ... and training really draws below that range: record the seeds of 256
    # training episodes (one-step stand-ins, no environment needed). A draw from a
    # wider range, e.g. [0, 2**31), would put nearly all of them above it.
    drawn, obs = [], np.zeros(data_spec["obs_dim"])

    def one_step_episodes(env_id, model, seeds, greedy, generator=None):
        drawn.extend(seeds)
        return [[(obs, 0, 1.0, obs, True)] for _ in seeds]

    monkeypatch.setattr(rl_data, "run_episodes", one_step_episodes)
    batches = train_batches(cfg.data, None, 64, torch.Generator().manual_seed(0), model)
    for _ in range(4):
        next(batches)
    assert len(drawn) == 256 and max(drawn) < TRAIN_SEED_RANGE


def test_training_batch_shapes_and_dtypes(batch, data_spec):
    t = len(batch["inputs"])
    assert batch["inputs"].shape == (t, data_spec["obs_dim"])
    assert batch["inputs"].dtype == torch.float32
    assert batch["actions"].shape == (t,) and batch["actions"].dtype == torch.long
    assert batch["actions"].min() >= 0 and batch["actions"].max() < data_spec["num_actions"]
    for name in ("returns", "advantages"):
        assert batch[name].shape == (t,) and torch.isfinite(batch[name]).all()


def test_each_transition_follows_from_the_last_by_the_environment(cfg, draw_batch):
    """Replay the batch's episodes from their seeds: every observation is what the
    environment returned for the previous transition's action (a next state paired
    off by one fails), episodes end where the environment ended them, and each
    return is the reward plus the discounted return of the next step. The seeds are
    the first draw of the data generator (data.train_batches)."""
    import gymnasium as gym

    batch = draw_batch(4, seed=0)
    generator = torch.Generator().manual_seed(0)
    seeds = torch.randint(TRAIN_SEED_RANGE, (4,), generator=generator).tolist()
    obs, actions, returns = batch["inputs"], batch["actions"].tolist(), batch["returns"]
    env, t = gym.make(cfg.data.env_id), 0
    for seed in seeds:
        observation, _ = env.reset(seed=seed)
        while True:
            assert torch.equal(obs[t], torch.as_tensor(observation)), (
                f"transition {t}: not the observation the environment returned after "
                "the previous one (paired off by one?)"
            )
            observation, reward, terminated, truncated, _ = env.step(actions[t])
            if terminated or truncated:
                break
            expected = reward + cfg.data.gamma * returns[t + 1]
            assert torch.isclose(returns[t], expected, rtol=1e-5), f"return {t}"
            t += 1
        if terminated:  # nothing follows a terminal state
            assert torch.isclose(returns[t], torch.tensor(reward)), f"return {t}"
        t += 1
    env.close()
    assert t == len(obs), "the batch holds transitions no episode produced"
