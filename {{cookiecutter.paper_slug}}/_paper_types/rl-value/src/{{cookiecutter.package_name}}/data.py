"""Data: a replay memory filled by an epsilon-greedy agent, and DQN's TD targets.

DQN (Mnih et al., 2015) learns Q(s, a) from transitions (s, a, r, s', terminated)
that an epsilon-greedy agent stores in a replay memory. Each update regresses
Q(s, a) on the TD target  r + gamma * max_a' Q_target(s', a')  (no bootstrap where
the episode terminated), over a batch drawn uniformly from the memory.

Everything that makes a training batch lives here, in the iterator that
``train_batches`` returns (``ReplayBatches``), so that the loop, the loss and the
checkpoints stay those of supervised learning:
- the environment, stepped ``train_every`` times per batch with the online
  network (the model the loop trains) choosing the greedy action;
- the replay memory (``ReplayMemory``);
- the TARGET NETWORK: a second copy of the model, made and synchronised here and
  used here only, under ``torch.no_grad()``, to compute the TD targets. The loss
  sees them as constants, exactly like a supervised label. Any method with a
  second network (an EMA teacher, a critic's target) puts it in the same place.

So one step of the training loop = one gradient step = ``train_every`` environment
steps; both counts are logged (``scalars()``: data/grad_steps, data/env_steps).

One training batch (``batch_size`` transitions from the memory):
    inputs   [B, obs_dim]   observations s
    actions  [B]            the actions taken in them
    targets  [B]            TD targets, computed with the target network

Evaluation splits hold environment seeds: one greedy episode per seed (``loss.py``).
Validation and test seeds are disjoint ranges above those training draws from.

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

import copy
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
    memory_size: int = MISSING  # transitions kept; the oldest are overwritten
    learning_starts: int = MISSING  # random-action steps before the first batch
    train_every: int = MISSING  # environment steps per gradient step
    target_update_every: int = MISSING  # gradient steps between hard target copies
    target_tau: float | None = MISSING  # Polyak averaging instead of copies (None: copies)
    epsilon_start: float = MISSING
    epsilon_end: float = MISSING
    epsilon_decay_steps: int = MISSING  # environment steps of the linear decay
    val_episodes: int = MISSING
    test_episodes: int = MISSING
    seed: int = MISSING


{% include "_paper_types/_shared/environment_splits.py" %}

def epsilon_at(env_steps: int, cfg) -> float:
    """The exploration rate after ``env_steps`` environment steps: linear from
    epsilon_start to epsilon_end over epsilon_decay_steps, then constant. Counted
    in environment steps (as in the paper), not gradient steps."""
    fraction = min(env_steps / max(cfg.epsilon_decay_steps, 1), 1.0)
    return cfg.epsilon_start + fraction * (cfg.epsilon_end - cfg.epsilon_start)


def td_targets(
    rewards: torch.Tensor, next_q: torch.Tensor, terminated: torch.Tensor, gamma: float
) -> torch.Tensor:
    """r + gamma * max_a' Q_target(s', a'), with no bootstrap where the episode
    terminated (the task is over: nothing follows). An episode cut off by a time
    limit (truncated) is not terminated: its next state has a future, so it is
    bootstrapped. next_q [B, num_actions]; the rest [B]."""
    return rewards + gamma * (~terminated).float() * next_q.max(dim=1).values


@torch.no_grad()
def greedy_episodes(env_id: str, model, seeds: list[int]) -> list[dict]:
    """One greedy episode per seed (the action of the largest Q), environments in
    lockstep so the network runs once per time step for all of them. Returns per
    episode its rewards and its first observation."""
    device = next(model.parameters()).device
    envs = [gym.make(env_id) for _ in seeds]
    observations = [env.reset(seed=seed)[0] for env, seed in zip(envs, seeds, strict=True)]
    episodes = [{"first_obs": obs, "rewards": []} for obs in observations]
    running = list(range(len(envs)))
    while running:
        obs = torch.as_tensor(np.array([observations[i] for i in running]), dtype=torch.float32)
        q = model(obs.to(device)).cpu()
        if not torch.isfinite(q).all():
            # Diverged weights: say so, rather than act on NaN.
            raise FloatingPointError("the Q-values are not finite while playing episodes")
        still_running = []
        for i, action in zip(running, q.argmax(dim=-1).tolist(), strict=True):
            observations[i], reward, terminated, truncated, _ = envs[i].step(action)
            episodes[i]["rewards"].append(float(reward))
            if not (terminated or truncated):
                still_running.append(i)
        running = still_running
    for env in envs:
        env.close()
    return episodes


def batch_layout(data_spec) -> dict[str, tuple[tuple, torch.dtype]]:
    """Per key of a training batch: its shape ("batch" for the batch dimension)
    and dtype. The generic tests hold every batch train_batches draws to it."""
    return {
        "inputs": (("batch", data_spec["obs_dim"]), torch.float32),
        "actions": (("batch",), torch.long),
        "targets": (("batch",), torch.float32),
    }


class ReplayMemory:
    """A ring buffer of transitions, one preallocated tensor per field. When full,
    each new transition overwrites the oldest."""

    def __init__(self, capacity: int, obs_dim: int):
        self.capacity = capacity
        self.obs = torch.zeros(capacity, obs_dim)
        self.actions = torch.zeros(capacity, dtype=torch.long)
        self.rewards = torch.zeros(capacity)
        self.next_obs = torch.zeros(capacity, obs_dim)
        self.terminated = torch.zeros(capacity, dtype=torch.bool)
        self.position = 0  # where the next transition goes
        self.size = 0  # how many rows hold transitions

    def add(self, obs, action: int, reward: float, next_obs, terminated: bool) -> None:
        i = self.position
        self.obs[i] = torch.as_tensor(obs)
        self.actions[i] = action
        self.rewards[i] = reward
        self.next_obs[i] = torch.as_tensor(next_obs)
        self.terminated[i] = terminated
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """Row indices of ``batch_size`` distinct transitions, uniformly over the
        filled part of the memory (never an empty row, never one row twice).

        Uniform draws, with any repeated row drawn again: a permutation of the whole
        memory (``randperm``) gives the same distribution but costs ~0.4 ms at 50k
        rows, a tenth of a training step here. When the batch is a large share of
        the memory, repeats are frequent and the permutation is the cheaper way."""
        if 4 * batch_size > self.size:
            return torch.randperm(self.size, generator=generator)[:batch_size]
        rows = torch.randint(self.size, (batch_size,), generator=generator)
        while True:
            distinct = rows.unique()  # sorted: the order of a batch does not matter
            if len(distinct) == batch_size:
                return distinct
            more = torch.randint(self.size, (batch_size - len(distinct),), generator=generator)
            rows = torch.cat([distinct, more])

    FIELDS = ("obs", "actions", "rewards", "next_obs", "terminated")

    def state_dict(self) -> dict:
        # Only the filled rows: an early checkpoint stays small; a full memory
        # costs its whole size in every checkpoint (README, "Where outputs go").
        rows = {name: getattr(self, name)[: self.size].clone() for name in self.FIELDS}
        return {**rows, "position": self.position, "size": self.size}

    def load_state_dict(self, state: dict) -> None:
        self.position, self.size = state["position"], state["size"]
        for name in self.FIELDS:
            getattr(self, name)[: self.size] = state[name]


def train_batches(cfg, split, batch_size: int, generator: torch.Generator, model=None):
    """Endless batches of ``batch_size`` transitions from the replay memory, with
    their TD targets; the agent (``model``, epsilon-greedy) keeps playing between them."""
    return ReplayBatches(cfg, batch_size, generator, model)


def time_limit(env) -> gym.wrappers.TimeLimit | None:
    """The TimeLimit wrapper of ``env`` (it counts the steps of the episode)."""
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.wrappers.TimeLimit):
            return env
        env = env.env
    return None


class ReplayBatches:
    """The iterator ``train_batches`` returns: the agent, its replay memory and the
    target network. Each ``next()``: ``train_every`` environment steps (random
    actions until ``learning_starts`` steps were taken), a target synchronisation
    when one is due, then a batch from the memory with its TD targets."""

    def __init__(self, cfg, batch_size: int, generator: torch.Generator, model):
        if batch_size > cfg.memory_size:
            raise ValueError(
                f"batch_size {batch_size} > data.memory_size {cfg.memory_size}: "
                "a batch holds distinct transitions"
            )
        self.cfg, self.batch_size, self.generator = cfg, batch_size, generator
        self.online = model  # the network the loop trains: it picks the greedy actions
        # The target network: a copy, never trained, only synchronised (``_sync``).
        self.target = copy.deepcopy(model)
        self.device = next(model.parameters()).device
        self.env = gym.make(cfg.env_id)
        self.num_actions = self.env.action_space.n
        self.memory = ReplayMemory(cfg.memory_size, self.env.observation_space.shape[0])
        self.obs = None  # the observation the agent acts on next (None: reset first)
        self.env_steps, self.grad_steps, self.episodes = 0, 0, 0
        self.episode_return, self.episode_length = 0.0, 0  # of the episode being played
        self.returns: list[float] = []  # of the episodes finished since the last scalars()
        self.lengths: list[int] = []

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        # Warm-up: a memory of random transitions before anything is learned.
        while self.env_steps < cfg.learning_starts or self.memory.size < self.batch_size:
            self.env_step(explore=True)
        for _ in range(cfg.train_every):
            self.env_step(explore=None)
        self.sync_target()
        rows = self.memory.sample(self.batch_size, self.generator)
        memory = self.memory
        targets = self.targets(memory.rewards[rows], memory.next_obs[rows], memory.terminated[rows])
        self.grad_steps += 1
        return {
            "inputs": memory.obs[rows].to(self.device),
            "actions": memory.actions[rows].to(self.device),
            "targets": targets,
        }

    @torch.no_grad()
    def targets(self, rewards, next_obs, terminated) -> torch.Tensor:
        """TD targets from the target network. Under no_grad: the loss must treat
        them as constants (a gradient through them would also move the target,
        which is another algorithm, "residual gradient", and a slower one)."""
        next_q = self.target(next_obs.to(self.device))
        device = next_q.device
        return td_targets(rewards.to(device), next_q, terminated.to(device), self.cfg.gamma)

    @torch.no_grad()
    def sync_target(self) -> None:
        """Every ``target_update_every`` gradient steps (counting from the first,
        at 0) the target becomes a copy of the online network, and stays fixed in
        between: the regression target does not move with each update. With
        ``target_tau`` it instead moves a fraction tau towards it every step."""
        if self.cfg.target_tau is not None:
            for target, online in zip(
                self.target.parameters(), self.online.parameters(), strict=True
            ):
                target.lerp_(online, self.cfg.target_tau)
        elif self.grad_steps % self.cfg.target_update_every == 0:
            self.target.load_state_dict(self.online.state_dict())

    def epsilon(self) -> float:
        return epsilon_at(self.env_steps, self.cfg)

    def act(self, explore: bool | None) -> int:
        """A random action with probability epsilon (always, while ``explore``),
        else the online network's greedy one. All draws from the data generator."""
        if explore or torch.rand((), generator=self.generator) < self.epsilon():
            return int(torch.randint(self.num_actions, (), generator=self.generator))
        with torch.no_grad():
            obs = torch.as_tensor(self.obs, dtype=torch.float32, device=self.device)
            return int(self.online(obs.unsqueeze(0)).argmax(dim=-1))

    def env_step(self, explore: bool | None) -> None:
        if self.obs is None:
            seed = int(torch.randint(TRAIN_SEED_RANGE, (), generator=self.generator))
            self.obs, _ = self.env.reset(seed=seed)
        action = self.act(explore)
        next_obs, reward, terminated, truncated, _ = self.env.step(action)
        # Store the state the environment returned for this action, before any
        # reset replaces it, and only `terminated` as the end of the future: a
        # time-limit stop (truncated) still has one, and is bootstrapped.
        self.memory.add(self.obs, action, float(reward), next_obs, terminated)
        self.env_steps += 1
        self.episode_return += float(reward)
        self.episode_length += 1
        if terminated or truncated:
            self.returns.append(self.episode_return)
            self.lengths.append(self.episode_length)
            self.episodes += 1
            self.episode_return, self.episode_length = 0.0, 0
            self.obs = None  # the next step resets, with a seed from the generator
        else:
            self.obs = next_obs

    def scalars(self) -> dict[str, float]:
        """Logged as data/<name>: environment and gradient steps (distinct clocks:
        ``train_every`` env steps per gradient step, plus the warm-up), episodes,
        epsilon, how full the memory is, and the return and length of the episodes
        finished since the last report (epsilon-greedy, so below the greedy ones)."""
        report = {
            "env_steps": self.env_steps,
            "grad_steps": self.grad_steps,
            "episodes": self.episodes,
            "epsilon": self.epsilon(),
            "memory_size": self.memory.size,
        }
        if self.returns:
            report["episode_return"] = sum(self.returns) / len(self.returns)
            report["episode_length"] = sum(self.lengths) / len(self.lengths)
        self.returns, self.lengths = [], []
        return report

    # Checkpointed, tensors and plain data only (weights_only loads): the memory,
    # the target network, the counts and the live environment, so that a resumed
    # run continues the very episode it was playing.
    def state_dict(self) -> dict:
        env = None
        if self.obs is not None:
            # CartPole's whole state: its physics vector and the time limit's step
            # count (its random generator is only used at reset, which draws its
            # seed from ours). Another environment needs its own equivalent here.
            env = {
                "state": torch.as_tensor(np.array(self.env.unwrapped.state, dtype=np.float64)),
                "elapsed_steps": time_limit(self.env)._elapsed_steps,
                "obs": torch.as_tensor(self.obs),
            }
        return {
            "memory": self.memory.state_dict(),
            "target": self.target.state_dict(),
            "env": env,
            "counts": [self.env_steps, self.grad_steps, self.episodes],
            "episode": [self.episode_return, self.episode_length],
            "window": [self.returns, self.lengths],
        }

    def load_state_dict(self, state: dict) -> None:
        self.memory.load_state_dict(state["memory"])
        self.target.load_state_dict(state["target"])
        self.env_steps, self.grad_steps, self.episodes = state["counts"]
        self.episode_return, self.episode_length = state["episode"]
        self.returns, self.lengths = (list(values) for values in state["window"])
        self.obs = None
        if state["env"] is not None:
            self.env.reset(seed=0)  # gymnasium refuses step() before a reset
            self.env.unwrapped.state = state["env"]["state"].numpy().copy()
            time_limit(self.env)._elapsed_steps = state["env"]["elapsed_steps"]
            self.obs = state["env"]["obs"].numpy().copy()


def overfit_batch(cfg, split, n: int, generator: torch.Generator, model):
    """``n`` regression problems to memorise for the overfit checks
    (tests/test_overfit.py and the gauntlet): random observations, each with one
    action and a fixed target in [0, 1). A batch of real transitions is a poor
    probe: its targets move with the target network and nearly equal states carry
    different targets. If model, loss and optimiser cannot fit these, Q-learning
    has no chance."""
    sizes = spec(cfg)
    return {
        "inputs": torch.randn(n, sizes["obs_dim"], generator=generator),
        "actions": torch.randint(sizes["num_actions"], (n,), generator=generator),
        "targets": torch.rand(n, generator=generator),
    }
