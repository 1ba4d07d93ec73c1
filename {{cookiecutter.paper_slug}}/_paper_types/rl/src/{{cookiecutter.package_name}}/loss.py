"""Loss and metrics for REINFORCE with a value baseline (Williams, 1992).

The policy-gradient theorem: grad J = E[ advantage * grad log pi(action | obs) ].
Minimising the loss below follows that gradient. Every term is written out:
- policy:  -mean over transitions of advantage * log pi(action | obs). The sign
  matters: with it, actions that did better than expected become more likely;
  flipped, the policy learns to fail (tests/test_rl_pitfalls.py checks it on a
  two-armed bandit);
- value:   mean over transitions of huber(value - return): the baseline regresses
  on the returns; Huber keeps one long episode's large error from dominating;
- entropy: mean over transitions of the policy's entropy, subtracted with a small
  weight so the policy does not become deterministic before it has explored.
Advantages and returns are made by the rollout collector (data.py) and are
constants here: no gradient flows through them.

Evaluation plays one greedy episode per seed of the split, all side by side, and
reports their mean undiscounted return and length and the worst return: numbers of
the whole split (``split_metrics``), so that each evaluation plays its episodes once.

Contract shared with the rest of the package (every paper type provides it):
``loss_fn``, ``metrics_fn``, ``split_metrics``, ``HEADLINE_METRIC``,
``expected_loss_at_init``, ``memorised`` and ``summarise``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import MISSING

from .data import run_episodes

# The number the example is judged by (PAPER.md), and the value train() returns.
HEADLINE_METRIC = "return"
HEADLINE_MODE = "max"  # higher is better: best.pt and the sweep summaries rank by it


@dataclass
class LossConfig:
    """The keys of configs/loss/*.yaml and their types (see configs/schema.py)."""

    value_weight: float = MISSING
    entropy_weight: float = MISSING


def huber(error: torch.Tensor) -> torch.Tensor:
    """0.5 * e^2 for |e| <= 1, |e| - 0.5 beyond: quadratic near 0, linear far away."""
    small = error.abs() <= 1
    return torch.where(small, 0.5 * error.pow(2), error.abs() - 0.5)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the action distribution per observation, [T]."""
    log_probs = logits.log_softmax(dim=-1)
    return -(log_probs.exp() * log_probs).sum(dim=-1)


def policy_loss(logits: torch.Tensor, actions: torch.Tensor, advantages: torch.Tensor):
    """-mean(advantage * log pi(action | obs)): its gradient is the policy gradient."""
    log_pi = logits.log_softmax(dim=-1).gather(1, actions.unsqueeze(1)).squeeze(1)
    return -(advantages * log_pi).mean()


def loss_fn(outputs: dict, batch: dict[str, torch.Tensor], cfg) -> torch.Tensor:
    policy = policy_loss(outputs["logits"], batch["actions"], batch["advantages"])
    value = huber(outputs["value"] - batch["returns"]).mean()
    bonus = entropy(outputs["logits"]).mean()
    return policy + cfg.value_weight * value - cfg.entropy_weight * bonus


def greedy_returns(env_id: str, model, seeds: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """One greedy episode per seed: its undiscounted return and its length, [N] each."""
    episodes = run_episodes(env_id, model, seeds, greedy=True)
    returns = torch.tensor([sum(step[2] for step in episode) for episode in episodes])
    lengths = torch.tensor([float(len(episode)) for episode in episodes])
    return returns, lengths


def metrics_fn(model, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """No per-example metrics: the episodes are played once per evaluation, in
    split_metrics, which needs them all for the worst return."""
    return {}


def memorised(model, batch: dict[str, torch.Tensor]) -> bool:
    """The overfit checks' pass condition on a fixed batch of transitions: the
    policy gives the taken action at least 0.9 wherever it did better than expected
    (advantage > 0) and at most 0.1 wherever it did worse. Meaningful on consistent
    data (the bandit probes of tests/test_overfit.py), not on noisy episodes.
    Probabilities, not the greedy action: with two actions an untrained policy's
    greedy choice is right half the time, and one example would count as learnt."""
    with torch.no_grad():
        probs = model(batch["inputs"])["logits"].softmax(dim=-1)
    taken = probs.gather(-1, batch["actions"].unsqueeze(-1)).squeeze(-1)
    return bool(torch.where(batch["advantages"] > 0, taken >= 0.9, taken <= 0.1).all())


def expected_loss_at_init(data_spec: dict[str, int], batch, cfg) -> float:
    """At initialisation the policy is uniform and the value is 0, so: the policy
    term is ln(num_actions) * mean(advantage) (0 once normalised), the value term
    is the mean Huber loss of the returns themselves, and the entropy is
    ln(num_actions)."""
    uniform = math.log(data_spec["num_actions"])
    policy = uniform * batch["advantages"].mean().item()
    value = huber(batch["returns"]).mean().item()
    return policy + cfg.value_weight * value - cfg.entropy_weight * uniform


def split_metrics(model, split: dict[str, torch.Tensor], cfg) -> dict[str, float]:
    """The greedy policy on the split's seeds, one episode each (training's
    validation and eval.py): the mean return (the headline) and length, and the
    worst return, which the mean hides for a policy that fails from some start
    states. ~0.05 s per evaluation for an untrained policy's short episodes, up to
    ~0.5 s for 10 episodes of 500 steps."""
    returns, lengths = greedy_returns(cfg.data.env_id, model, split["seed"].tolist())
    return {
        "return": returns.mean().item(),
        "length": lengths.mean().item(),
        "worst_return": returns.min().item(),
    }


def summarise(model, splits, run_dir: Path) -> dict[str, float]:
    """After training: the greedy return of each validation episode, one per line
    in ``episodes.txt`` (the worst of them is in the validation metrics already:
    split_metrics)."""
    returns, _ = greedy_returns(model.env_id, model, splits["val"]["seed"].tolist())
    lines = [
        f"seed {int(s)}: return {r:.0f}"
        for s, r in zip(splits["val"]["seed"], returns.tolist(), strict=True)
    ]
    (Path(run_dir) / "episodes.txt").write_text("\n".join(lines) + "\n")
    return {}
