"""Model (phase 2): output shapes and the parameter count the config implies."""

from __future__ import annotations

from {{ cookiecutter.package_name }}.model import (
    build_model,
)


def test_output_shape(model, batch, data_spec):
    logits = model(batch["inputs"])
    assert logits.shape == (len(batch["inputs"]), data_spec["num_classes"])


def expected_parameter_count(widths: list[int], in_channels: int, num_classes: int) -> int:
    """Count from the architecture, written independently of model.py."""
    total, channels = 0, in_channels
    for width in widths:
        # Two blocks: 3x3 conv without bias, then batch norm (scale and shift).
        total += 9 * channels * width + 2 * width
        total += 9 * width * width + 2 * width
        channels = width
    return total + channels * num_classes + num_classes  # linear classifier


def test_parameter_count_matches_the_formula(cfg, data_spec):
    for widths in ([8], [16, 32], [32, 64]):
        m = cfg.model.copy()
        m.widths = widths
        model = build_model(m, data_spec)
        expected = expected_parameter_count(
            widths, data_spec["in_channels"], data_spec["num_classes"]
        )
        assert sum(p.numel() for p in model.parameters()) == expected
