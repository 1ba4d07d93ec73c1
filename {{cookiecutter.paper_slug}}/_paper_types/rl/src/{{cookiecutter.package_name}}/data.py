"""Data: episodes of a gymnasium environment, collected with the current policy.

In reinforcement learning the training data is not a fixed set: each batch is a
fresh set of episodes played by the policy as it is now (on-policy), so
``train_batches`` is a rollout collector that the training loop asks for one batch
per update, exactly as it asks a supervised data set.

One training batch is ``batch_size`` whole episodes, flattened into transitions:
    inputs      [T, obs_dim]   observations
    actions     [T]            actions taken (sampled from the policy)
    returns     [T]            discounted return from each step on (the value target)
    advantages  [T]            how much better than expected each action did

Evaluation splits hold environment seeds: one greedy episode per seed (``loss.py``).
Validation and test seeds are disjoint ranges, and training episodes draw theirs
from the training generator, so held-out start states are never trained on.

Contract shared with the rest of the package (every paper type provides it):
- ``spec(cfg)`` -> dict of what the model needs to know: sizes, and any other
  values (floats such as a noise schedule's betas are fine).
- ``build_splits(cfg)`` -> {"train" | "val" | "test": {"seed": Tensor}}.
- ``train_batches(cfg, split, batch_size, generator, model)`` -> endless training
  batches; every per-batch random draw (augmentation, noise, a time step) comes
  from ``generator``, so that a resumed run draws the same.
- ``overfit_batch(cfg, split, n, generator, model)`` -> n examples to memorise.
- ``batch_layout(spec)`` -> per key of a training batch: shape and dtype.
A batch's "inputs" is what the model's forward receives: one tensor, or a dict of
tensors ({"x_t": ..., "t": ...}) when the model takes several.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from omegaconf import MISSING

SPLITS = ("train", "val", "test")


@dataclass
class DataConfig:
    """The keys of configs/data/*.yaml and their types (see configs/schema.py)."""

    env_id: str = MISSING
    gamma: float = MISSING
    baseline: bool = MISSING
    normalize_advantages: bool = MISSING
    val_episodes: int = MISSING
    test_episodes: int = MISSING
    seed: int = MISSING


{% include "_paper_types/_shared/environment_splits.py" %}

def discounted_returns(rewards, ends, gamma: float, tails=None) -> torch.Tensor:
    """G_t = r_t + gamma * G_{t+1} over a flat list of transitions.

    ``ends[t]`` is True at the last step of an episode; the return restarts there
    (an episode's rewards never leak into the previous one). ``tails[t]`` is what
    follows the last step: 0 when the episode terminated (the task is over), an
    estimate of the value of the next state when it was truncated by a time limit
    (the task went on; the data just stops). Without ``tails`` every end counts as
    a termination.
    """
    returns = torch.zeros(len(rewards))
    following = 0.0
    for t in reversed(range(len(rewards))):
        if ends[t]:
            following = 0.0 if tails is None else float(tails[t])
        following = rewards[t] + gamma * following
        returns[t] = following
    return returns


@torch.no_grad()
def run_episodes(env_id: str, model, seeds: list[int], greedy: bool, generator=None) -> list:
    """Play one episode per seed, environments stepping in lockstep so the policy
    runs once per time step for all of them. Actions are the most likely ones
    (``greedy``, for evaluation) or sampled from the policy (for training).

    Returns per episode a list of (obs, action, reward, next_obs, terminated).
    """
    device = next(model.parameters()).device
    envs = [gym.make(env_id) for _ in seeds]
    observations = [env.reset(seed=seed)[0] for env, seed in zip(envs, seeds, strict=True)]
    episodes = [[] for _ in envs]
    running = list(range(len(envs)))
    while running:
        obs = torch.as_tensor(np.array([observations[i] for i in running]), dtype=torch.float32)
        logits = model(obs.to(device))["logits"].cpu()
        if not torch.isfinite(logits).all():
            # Diverged weights: say so, rather than let sampling fail obscurely.
            raise FloatingPointError("the policy's logits are not finite while playing episodes")
        if greedy:
            actions = logits.argmax(dim=-1)
        else:
            actions = torch.multinomial(logits.softmax(dim=-1), 1, generator=generator)[:, 0]
        still_running = []
        for i, action in zip(running, actions.tolist(), strict=True):
            next_obs, reward, terminated, truncated, _ = envs[i].step(action)
            episodes[i].append((observations[i], action, float(reward), next_obs, terminated))
            observations[i] = next_obs
            # gymnasium: terminated = the task ended (no future reward); truncated =
            # stopped by a time limit (the future was cut off, not zero).
            if not (terminated or truncated):
                still_running.append(i)
        running = still_running
    for env in envs:
        env.close()
    return episodes


def normalise(advantages: torch.Tensor) -> torch.Tensor:
    """Mean 0, std 1 over the batch. The std is the population one plus a small
    epsilon, so one transition (or all equal) gives zeros rather than NaN."""
    centred = advantages - advantages.mean()
    return centred / (centred.pow(2).mean().sqrt() + 1e-8)


def batch_layout(data_spec) -> dict[str, tuple[tuple, torch.dtype]]:
    """Per key of a training batch: its shape ("batch" for the batch dimension)
    and dtype. The generic tests hold every batch train_batches draws to it. The
    batch dimension runs over transitions (all episodes of the batch, flattened)."""
    return {
        "inputs": (("batch", data_spec["obs_dim"]), torch.float32),
        "actions": (("batch",), torch.long),
        "returns": (("batch",), torch.float32),
        "advantages": (("batch",), torch.float32),
    }


def train_batches(cfg, split, batch_size: int, generator: torch.Generator, model=None):
    """Endless batches of ``batch_size`` fresh episodes played by ``model`` as it is
    at the moment the batch is asked for (on-policy)."""
    return EpisodeBatches(cfg, batch_size, generator, model)


class EpisodeBatches:
    """The iterator ``train_batches`` returns. Besides batches it reports, through
    ``scalars()``, what the training curves of an RL run start with: environment
    steps and episodes played so far, and the mean return and length of the
    episodes played since the last report (the loop logs them as ``data/...``)."""

    def __init__(self, cfg, batch_size: int, generator: torch.Generator, model):
        self.cfg, self.batch_size, self.generator, self.model = cfg, batch_size, generator, model
        self.env_steps, self.episodes = 0, 0
        self.returns: list[float] = []  # of the episodes since the last scalars()
        self.lengths: list[int] = []

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        cfg, model = self.cfg, self.model
        seeds = torch.randint(TRAIN_SEED_RANGE, (self.batch_size,), generator=self.generator)
        episodes = run_episodes(
            cfg.env_id, model, seeds.tolist(), greedy=False, generator=self.generator
        )
        steps = [step for episode in episodes for step in episode]
        ends = [t == len(episode) - 1 for episode in episodes for t in range(len(episode))]
        device = next(model.parameters()).device
        obs = torch.as_tensor(np.array([s[0] for s in steps]), dtype=torch.float32, device=device)
        next_obs = torch.as_tensor(
            np.array([s[3] for s in steps]), dtype=torch.float32, device=device
        )
        with torch.no_grad():
            values = model(obs)["value"].cpu() if cfg.baseline else torch.zeros(len(steps))
            next_values = model(next_obs)["value"].cpu() if cfg.baseline else None
        # A truncated episode's return continues past its last step: estimate the
        # rest with the value of the next state. A terminated one's is zero.
        tails = None
        if next_values is not None:
            terminated = torch.tensor([s[4] for s in steps])
            tails = torch.where(terminated, 0.0, next_values)
        returns = discounted_returns([s[2] for s in steps], ends, cfg.gamma, tails)
        # The baseline (the value estimate) lowers the variance of the gradient
        # without biasing it; normalising fixes the scale across batches.
        advantages = returns - values
        if cfg.normalize_advantages:
            advantages = normalise(advantages)
        self.env_steps += len(steps)
        self.episodes += len(episodes)
        self.returns += [sum(step[2] for step in episode) for episode in episodes]
        self.lengths += [len(episode) for episode in episodes]
        return {
            "inputs": obs,
            "actions": torch.tensor([s[1] for s in steps], device=device),
            "returns": returns.to(device),
            "advantages": advantages.to(device),
        }

    def scalars(self) -> dict[str, float]:
        report = {"env_steps": self.env_steps, "episodes": self.episodes}
        if self.returns:
            report["episode_return"] = sum(self.returns) / len(self.returns)
            report["episode_length"] = sum(self.lengths) / len(self.lengths)
        self.returns, self.lengths = [], []
        return report

    # Checkpointed, so that a resumed run's log continues the counts exactly.
    def state_dict(self) -> dict:
        return {"counts": [self.env_steps, self.episodes], "window": [self.returns, self.lengths]}

    def load_state_dict(self, state: dict) -> None:
        self.env_steps, self.episodes = state["counts"]
        self.returns, self.lengths = (list(values) for values in state["window"])


def overfit_batch(cfg, split, n: int, generator: torch.Generator, model):
    """``n`` problems to memorise for the overfit checks (tests/test_overfit.py and
    the gauntlet). A batch of CartPole episodes cannot be memorised: nearly identical
    states carry random actions and advantages of both signs, and the policy loss
    on a fixed batch has no minimum. So the RL overfit check is a probe task instead
    (A. Jones, "Debugging RL, without the agonizing pain"): n contextual-bandit
    problems, each a random observation with one rewarded action. If the project's
    model, loss and optimiser cannot learn to pick it for every observation, the
    policy gradient is broken, whatever the CartPole curve later says.
    """
    seed = int(torch.randint(2**31, (1,), generator=generator))
    return bandit_batch(n, spec(cfg)["obs_dim"], spec(cfg)["num_actions"], seed=seed)


def bandit_batch(n_contexts: int, obs_dim: int, num_actions: int, seed: int = 0) -> dict:
    """Each observation with its rewarded action, advantage +1 and return 1.

    Only positive advantages: then the policy term is a cross-entropy with a
    minimum of 0. With a negative advantage on the other actions it would have no
    minimum (pushing a bad action's probability towards 0 lowers the loss without
    end), the logits would grow without bound, and the fit would stall.
    """
    generator = torch.Generator().manual_seed(seed)
    return {
        "inputs": torch.randn(n_contexts, obs_dim, generator=generator),
        "actions": torch.randint(num_actions, (n_contexts,), generator=generator),
        "advantages": torch.ones(n_contexts),
        "returns": torch.ones(n_contexts),
    }
