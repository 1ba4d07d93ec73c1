"""Model (phase 2): output shapes and the parameter count the config implies."""

from __future__ import annotations

from {{ cookiecutter.package_name }}.model import (
    build_model,
)


def test_output_shape(model, batch, data_spec):
    logits = model(batch["inputs"])
    b, t = batch["inputs"].shape
    assert logits.shape == (b, t, data_spec["vocab_size"])


def expected_parameter_count(m, vocab: int, context: int) -> int:
    """Count from the architecture, written independently of model.py."""
    d, hidden = m.d_model, m.mlp_ratio * m.d_model
    embeddings = vocab * d + (context * d if m.positional_encoding else 0)
    attention = (d * 3 * d + 3 * d) + (d * d + d)  # qkv and output projections
    mlp = (d * hidden + hidden) + (hidden * d + d)
    layer_norms = 2 * (2 * d)  # two per block, gain and bias each
    head = d * vocab  # no bias
    return embeddings + m.n_layers * (attention + mlp + layer_norms) + 2 * d + head


def test_parameter_count_matches_the_formula(cfg, data_spec):
    for positional in (True, False):
        m = cfg.model.copy()
        m.positional_encoding = positional
        model = build_model(m, data_spec)
        expected = expected_parameter_count(m, data_spec["vocab_size"], data_spec["context_length"])
        assert sum(p.numel() for p in model.parameters()) == expected
