"""Model (phase 2): output shapes and the parameter count the config implies."""

from __future__ import annotations

from {{ cookiecutter.package_name }}.model import (
    build_model,
)


def test_output_shapes(model, batch, cfg, data_spec):
    outputs = model(batch["inputs"])
    n = len(batch["inputs"])
    assert outputs["logits"].shape == (n, data_spec["num_pixels"])
    assert outputs["mu"].shape == outputs["logvar"].shape == (n, cfg.model.latent_dim)


def linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def expected_parameter_count(hidden: list[int], latent: int, pixels: int) -> int:
    """Count from the architecture, written independently of model.py."""
    encoder = sum(linear(a, b) for a, b in zip([pixels, *hidden], hidden, strict=False))
    heads = 2 * linear(hidden[-1], latent)  # mu and logvar
    widths = [latent, *hidden[::-1], pixels]
    decoder = sum(linear(a, b) for a, b in zip(widths, widths[1:], strict=False))
    return encoder + heads + decoder


def test_parameter_count_matches_the_formula(cfg, data_spec):
    for hidden, latent in (([32], 2), ([256, 128], 16)):
        m = cfg.model.copy()
        m.hidden, m.latent_dim = hidden, latent
        model = build_model(m, data_spec)
        expected = expected_parameter_count(hidden, latent, data_spec["num_pixels"])
        assert sum(p.numel() for p in model.parameters()) == expected
