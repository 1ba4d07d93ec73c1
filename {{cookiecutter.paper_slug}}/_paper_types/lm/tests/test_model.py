"""Model (phase 2): output shapes, the parameter count the config implies, GPT-2's
initialisation."""

from __future__ import annotations

import math

import pytest

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
    head = 0 if m.tied_head else d * vocab  # tied: the embedding's matrix, counted once
    return embeddings + m.n_layers * (attention + mlp + layer_norms) + 2 * d + head


@pytest.mark.parametrize("positional, tied", [(True, True), (False, True), (True, False)])
def test_parameter_count_matches_the_formula(cfg, data_spec, positional, tied):
    m = cfg.model.copy()
    m.positional_encoding, m.tied_head = positional, tied
    model = build_model(m, data_spec)
    expected = expected_parameter_count(m, data_spec["vocab_size"], data_spec["context_length"])
    assert sum(p.numel() for p in model.parameters()) == expected


def test_initialisation_is_gpt2_s(model, cfg):
    # Weights N(0, 0.02); the two projections per block that write into the residual
    # stream N(0, 0.02 / sqrt(2 * n_layers)); biases 0; LayerNorm gain 1.
    def std(weight) -> float:
        return weight.detach().std().item()

    assert std(model.token_embedding.weight) == pytest.approx(0.02, rel=0.1)
    residual = 0.02 / math.sqrt(2 * cfg.model.n_layers)
    for block in model.blocks:
        assert std(block.attn.qkv.weight) == pytest.approx(0.02, rel=0.1)
        assert std(block.mlp.up.weight) == pytest.approx(0.02, rel=0.1)
        assert std(block.attn.out.weight) == pytest.approx(residual, rel=0.15)
        assert std(block.mlp.down.weight) == pytest.approx(residual, rel=0.1)
        assert block.attn.qkv.bias.abs().max() == 0 and block.mlp.down.bias.abs().max() == 0
        assert (block.ln_attn.weight == 1).all() and (block.ln_attn.bias == 0).all()
