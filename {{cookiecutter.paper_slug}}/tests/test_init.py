"""Loss at initialisation: an untrained model should be no better than a fair guess."""

from __future__ import annotations

import pytest
import torch

from {{ cookiecutter.package_name }}.loss import (
    expected_loss_at_init,
    loss_fn,
)


def test_loss_at_init_is_what_an_untrained_model_gives(
    model, draw_batch, data_spec, cfg, skip_if_not_applicable
):
    skip_if_not_applicable("loss at init")
    # Far above the expected value: over-confident initial outputs (init scale too
    # large), which wastes the first part of training undoing them. Far below: the
    # targets leak into the inputs.
    batch = draw_batch(64)
    model.eval()
    with torch.no_grad():
        loss = loss_fn(model(batch["inputs"]), batch, cfg.loss).item()
    assert loss == pytest.approx(expected_loss_at_init(data_spec, batch, cfg.loss), abs=0.05)
