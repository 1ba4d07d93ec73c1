"""Overfit, the RL way: memorise 1, 10 and 100 contextual-bandit problems.

A batch of CartPole episodes cannot be memorised: nearly identical states carry
random actions and advantages of both signs, and the policy loss on a fixed batch
has no minimum. The RL version of the overfit test is a probe task instead
(A. Jones, "Debugging RL, without the agonizing pain"): each of N random
observations has one rewarded action. The project's own model, loss and optimiser
must learn to pick it for every observation; if they cannot, the policy gradient
is broken, whatever the CartPole curve later says.
"""

from __future__ import annotations

import pytest
import torch

from {{ cookiecutter.package_name }}.loss import (
    loss_fn,
    memorised,
)
from {{ cookiecutter.package_name }}.train import (
    build_optimizer,
)


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


@pytest.mark.parametrize(
    "n_contexts, max_steps",
    [
        (1, 200),
        (10, 600),
        pytest.param(100, 3000, marks=pytest.mark.slow),
    ],
)
def test_policy_memorises_a_few_bandit_problems(model, cfg, data_spec, n_contexts, max_steps):
    batch = bandit_batch(n_contexts, data_spec["obs_dim"], data_spec["num_actions"])
    optimizer = build_optimizer(model, cfg.optim)
    for step in range(max_steps + 1):
        if step % 10 == 0 and memorised(model, batch):
            return
        loss = loss_fn(model(batch["inputs"]), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    pytest.fail(
        f"{n_contexts} bandit problems not memorised after {max_steps} steps. A policy "
        "that drifts away from rewarded actions: sign flip. No progress: LR too low or "
        "gradients not reaching the policy (see test_gradients.py)."
    )
