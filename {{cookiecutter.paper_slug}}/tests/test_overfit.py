"""Overfit tiny subsets: if the model cannot memorise 1, 10 or 100 examples, the
model, loss or optimiser is broken, whatever the full run later says."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.loss import (
    loss_fn,
    memorised,
)
from {{ cookiecutter.package_name }}.train import (
    build_optimizer,
)


def steps_to_memorise(model, batch, cfg, max_steps: int, check_every: int = 10):
    """Train on one fixed batch with the project's optimiser (constant LR); return
    the number of steps until ``loss.memorised`` holds, or None if it never does."""
    optimizer = build_optimizer(model, cfg.optim)
    for step in range(max_steps + 1):
        if step % check_every == 0:
            model.eval()
            if memorised(model, batch):
                return step
        model.train()
        loss = loss_fn(model(batch["inputs"]), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return None


@pytest.mark.parametrize(
    "n_examples, max_steps",
    [
        (1, 200),
        (10, 600),
        pytest.param(100, 3000, marks=pytest.mark.slow),
    ],
)
def test_model_memorises_a_few_examples(model, draw_batch, cfg, n_examples, max_steps):
    batch = draw_batch(n_examples)
    steps = steps_to_memorise(model, batch, cfg, max_steps)
    if steps is None:
        loss = loss_fn(model(batch["inputs"]), batch).item()
        pytest.fail(
            f"{n_examples} examples not memorised after {max_steps} steps (loss {loss:.4f}). "
            "Rising loss: sign flip or LR too high. Plateau: LR too low or gradients "
            "not reaching some layers (see test_gradients.py)."
        )
