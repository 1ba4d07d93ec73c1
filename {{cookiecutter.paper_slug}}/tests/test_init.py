"""Loss at initialisation: an untrained model should be no better than a fair guess."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.judge.diagnostics import (
    losses_at_init,
)


def test_loss_at_init_is_what_an_untrained_model_gives(
    model, draw_batch, data_spec, cfg, skip_if_not_applicable
):
    skip_if_not_applicable("loss at init")
    # Far above the expected value: over-confident initial outputs (init scale too
    # large), which wastes the first part of training undoing them. Far below: the
    # targets leak into the inputs. With players, each player's loss against its own.
    measured, expected = losses_at_init(model, draw_batch(64), data_spec, cfg.loss)
    assert measured.keys() == expected.keys()
    for player, value in expected.items():
        assert measured[player] == pytest.approx(value, abs=0.05), player or "loss"
