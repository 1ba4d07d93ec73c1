"""Overfit tiny subsets: if the model cannot memorise 1, 10 or 100 examples, the
model, loss or optimiser is broken, whatever the full run later says."""

from __future__ import annotations

import pytest
import torch

from {{ cookiecutter.package_name }}.loss import (
    HEADLINE_METRIC,
    loss_fn,
    metrics_fn,
)
from {{ cookiecutter.package_name }}.train import (
    build_optimizer,
)

LOSS_THRESHOLD = 0.01


def overfit(model, batch, cfg, max_steps: int) -> tuple[float, int]:
    """Train on one fixed batch with the project's optimiser (constant LR)."""
    optimizer = build_optimizer(model, cfg.optim)
    model.train()
    for step in range(1, max_steps + 1):
        loss = loss_fn(model(batch["inputs"]), batch)
        if loss.item() < LOSS_THRESHOLD:
            return loss.item(), step
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return loss.item(), max_steps


@pytest.mark.parametrize(
    "n_examples, max_steps",
    [
        (1, 200),
        (10, 400),
        pytest.param(100, 1500, marks=pytest.mark.slow),
    ],
)
def test_model_memorises_a_few_examples(model, splits, cfg, n_examples, max_steps):
    batch = {name: tensor[:n_examples] for name, tensor in splits["train"].items()}
    loss, steps = overfit(model, batch, cfg, max_steps)
    assert loss < LOSS_THRESHOLD, (
        f"loss still {loss:.4f} after {steps} steps on {n_examples} examples. "
        "Rising: sign flip or LR too high. Plateau: LR too low or gradients "
        "not reaching some layers (see test_gradients.py)."
    )
    model.eval()
    with torch.no_grad():
        headline = metrics_fn(model(batch["inputs"]), batch)[HEADLINE_METRIC]
    assert headline.mean().item() == 1.0, f"memorised loss but {HEADLINE_METRIC} < 1"
