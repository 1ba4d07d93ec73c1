"""Loss and metrics for DQN (Mnih et al., 2015).

The loss regresses Q(s, a), the online network's value of the action taken, on the
TD target that the data iterator computed with the target network (data.py):
    loss = mean over the batch of huber(Q(s, a) - target)
Huber (quadratic within +-delta, linear beyond) is what the paper calls clipping
the error term to [-1, 1]: a large TD error gives a gradient of size delta, not
one proportional to the error. ``loss.kind=mse`` is the ablation: 0.5 * error^2
everywhere (the same near 0, unclipped far away). The targets are constants here
(made under no_grad): no gradient flows into the target network.

Evaluation plays one greedy episode per seed of the split, all side by side, and
reports their mean undiscounted return and length and the worst return: numbers of
the whole split (``split_metrics``), so that each evaluation plays its episodes once.

Contract shared with the rest of the package (every paper type provides it):
``loss_fn``, ``metrics_fn``, ``split_metrics``, ``HEADLINE_METRIC``,
``expected_loss_at_init``, ``memorised`` and ``summarise``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np
import torch
from omegaconf import MISSING

from .data import greedy_episodes

# The number the example is judged by (PAPER.md), and the value train() returns.
HEADLINE_METRIC = "return"
HEADLINE_MODE = "max"  # higher is better: best.pt and the sweep summaries rank by it
MEMORISED_TOLERANCE = 0.05  # |Q(s, a) - target| on the overfit probes (targets in [0, 1))


class LossKind(Enum):
    huber = "huber"
    mse = "mse"


@dataclass
class LossConfig:
    """The keys of configs/loss/*.yaml and their types (see configs/schema.py)."""

    kind: LossKind = MISSING
    huber_delta: float = MISSING


def huber(error: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """0.5 * e^2 for |e| <= delta, delta * (|e| - 0.5 * delta) beyond: quadratic
    near 0, linear far away, with matching value and slope at |e| = delta."""
    small = error.abs() <= delta
    return torch.where(small, 0.5 * error.pow(2), delta * (error.abs() - 0.5 * delta))


def td_error_loss(error: torch.Tensor, cfg) -> torch.Tensor:
    if LossKind(cfg.kind) == LossKind.huber:
        return huber(error, cfg.huber_delta)
    return 0.5 * error.pow(2)


def q_taken(q: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Q(s, a) of the action taken in each row: [B, num_actions], [B] -> [B]."""
    return q.gather(1, actions.unsqueeze(1)).squeeze(1)


def loss_fn(outputs: torch.Tensor, batch: dict[str, torch.Tensor], cfg) -> torch.Tensor:
    error = q_taken(outputs, batch["actions"]) - batch["targets"]
    return td_error_loss(error, cfg).mean()


def metrics_fn(model, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """No per-example metrics: the episodes are played once per evaluation, in
    split_metrics, which needs them all for the worst return."""
    return {}


def memorised(model, batch: dict[str, torch.Tensor]) -> bool:
    """The overfit checks' pass condition on fixed (observation, action, target)
    rows (data.overfit_batch): every Q(s, a) within MEMORISED_TOLERANCE of its target."""
    with torch.no_grad():
        q = q_taken(model(batch["inputs"]), batch["actions"])
    return bool(((q - batch["targets"]).abs() <= MEMORISED_TOLERANCE).all())


def expected_loss_at_init(data_spec: dict[str, int], batch, cfg) -> float:
    """At initialisation every Q-value is about 0 (model.py), so the loss is that
    of the targets themselves: mean of loss(0 - target)."""
    return td_error_loss(-batch["targets"], cfg).mean().item()


def discounted(rewards: list[float], gamma: float) -> float:
    total = 0.0
    for reward in reversed(rewards):
        total = reward + gamma * total
    return total


def start_q(model, episodes: list[dict]) -> torch.Tensor:
    """max_a Q(s0, a) at each episode's first state, [N]."""
    device = next(model.parameters()).device
    starts = torch.as_tensor(np.array([e["first_obs"] for e in episodes]), device=device)
    with torch.no_grad():
        return model(starts).max(dim=1).values.cpu()


def split_metrics(model, split: dict[str, torch.Tensor], cfg) -> dict[str, float]:
    """The greedy policy on the split's seeds, one episode each (training's
    validation and eval.py): the mean return (the headline) and length, the worst
    return, which the mean hides for a policy that fails from some start states,
    and the mean max Q at the start states (``q_start``: it grows towards the
    discounted return as values propagate; loss.summarise sets the two side by
    side). ~0.5 s for 10 episodes of 500 steps."""
    episodes = greedy_episodes(cfg.data.env_id, model, split["seed"].tolist())
    returns = torch.tensor([sum(e["rewards"]) for e in episodes])
    lengths = torch.tensor([float(len(e["rewards"])) for e in episodes])
    return {
        "return": returns.mean().item(),
        "length": lengths.mean().item(),
        "worst_return": returns.min().item(),
        "q_start": start_q(model, episodes).mean().item(),
    }


def summarise(model, splits, run_dir: Path) -> dict[str, float]:
    """After training: the greedy return of each validation episode, one per line
    in ``episodes.txt``, and the over-estimation check of CHECKPOINTS.md: the
    network's max_a Q(s0, a) at each episode's start state next to the discounted
    return the greedy policy then actually got from it. Q-learning's max over noisy
    estimates biases Q upwards: ``val/q_start`` (split_metrics) well above
    ``discounted_return`` shows it."""
    seeds = splits["val"]["seed"].tolist()
    episodes = greedy_episodes(model.env_id, model, seeds)
    q_start = start_q(model, episodes)
    got = torch.tensor([discounted(e["rewards"], model.gamma) for e in episodes])
    lines = [
        f"seed {seed}: return {sum(e['rewards']):.0f}, max Q(s0) {q:.2f}, discounted return {g:.2f}"
        for seed, e, q, g in zip(seeds, episodes, q_start.tolist(), got.tolist(), strict=True)
    ]
    (Path(run_dir) / "episodes.txt").write_text("\n".join(lines) + "\n")
    return {"discounted_return": got.mean().item()}
