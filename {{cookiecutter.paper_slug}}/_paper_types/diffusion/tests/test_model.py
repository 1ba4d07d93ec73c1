"""Model (phase 2): output shape and the parameter count the config implies."""

from __future__ import annotations

from {{ cookiecutter.package_name }}.model import (
    build_model,
)


def test_output_shape(model, batch, data_spec):
    outputs = model(batch["inputs"])
    assert outputs.shape == (len(batch["x0"]), data_spec["num_pixels"])
    logits = model.level_logits(batch["inputs"])  # a prior over each pixel's 17 levels
    assert logits.shape == (len(batch["x0"]), data_spec["num_pixels"], 17)


def linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def expected_parameter_count(width: int, blocks: int, time_dim: int, use_time: bool) -> int:
    """Count from the architecture, written independently of model.py."""
    layer_norm = 2 * width
    time = linear(time_dim, width) + linear(width, width) if use_time else 0
    block = layer_norm + 2 * linear(width, width) + (linear(width, width) if use_time else 0)
    return time + linear(64, width) + blocks * block + layer_norm + linear(width, 64 * 17)


def test_parameter_count_matches_the_formula(cfg, data_spec):
    for width, blocks, time_dim, use_time in (
        (16, 1, 8, True),
        (256, 2, 128, True),
        (32, 3, 8, False),
    ):
        m = cfg.model.copy()
        m.width, m.num_blocks, m.time_dim, m.use_time = width, blocks, time_dim, use_time
        model = build_model(m, data_spec)
        expected = expected_parameter_count(width, blocks, time_dim, use_time)
        assert sum(p.numel() for p in model.parameters()) == expected
