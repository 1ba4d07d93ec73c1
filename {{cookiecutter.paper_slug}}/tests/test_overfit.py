"""Overfit tiny subsets: if the model cannot memorise 1, 10 or 100 examples, the
model, loss or optimiser is broken, whatever the full run later says.

The examples come from ``data.overfit_batch``: training batches for supervised
paper types, contextual-bandit probes for RL (see its docstring for why).
"""

from __future__ import annotations

import pytest
import torch

from {{ cookiecutter.package_name }}.data import (
    overfit_batch,
)
from {{ cookiecutter.package_name }}.judge.diagnostics import (
    VACUOUS,
    fit_fixed_batch,
    overfit_budget,
)


@pytest.mark.parametrize("n_examples", [1, 10, pytest.param(100, marks=pytest.mark.slow)])
def test_model_memorises_a_few_examples(model, cfg, splits, n_examples, skip_if_not_applicable):
    skip_if_not_applicable("overfit")
    generator = torch.Generator().manual_seed(0)
    batch = overfit_batch(cfg.data, splits["train"], n_examples, generator, model)
    budget = overfit_budget(cfg, n_examples)
    steps, losses = fit_fixed_batch(model, batch, cfg, budget)
    if steps == 0:
        pytest.fail(f"{n_examples} examples: {VACUOUS}")
    if steps is None:
        pytest.fail(
            f"{n_examples} examples not memorised after {budget} steps (loss {losses[-1]:.4f}). "
            "Rising loss: sign flip or LR too high. Plateau: LR too low or gradients "
            "not reaching some layers (see test_gradients.py)."
        )
