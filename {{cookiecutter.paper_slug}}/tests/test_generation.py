"""Autoregressive models, those whose model.py defines ``generate(model, prompt, n,
generator, temperature)``: no output depends on a later input, at any cut; greedy
generation writes what the forward pass predicts, from a short prompt as from a
long one; sampling repeats with its generator. A model without ``generate`` is not
autoregressive and these say n/a (judge/diagnostics.py: not_applicable).

A causal mask checked at one position, and a decoding loop checked by reading its
samples, miss the bugs these catch: a mask that leaks at the last positions only,
positions numbered from the end of the input (right on full sequences, wrong from
a short prompt), a decoding path that scores another position than training does.
"""

from __future__ import annotations

import pytest
import torch

import {{ cookiecutter.package_name }}.model as paper_model
from {{ cookiecutter.package_name }}.judge.diagnostics import (
    causality_problems,
    generation_problems,
)


def test_no_output_depends_on_a_later_input_at_any_cut(model, batch, skip_if_not_applicable):
    skip_if_not_applicable("causality")
    tokens = batch["inputs"][:4]  # four token sequences as training feeds them
    assert causality_problems(model, tokens) == []


@pytest.mark.parametrize("prompt", ["one token", "half the sequence"])
def test_greedy_generation_writes_what_the_forward_pass_predicts(
    model, batch, prompt, skip_if_not_applicable
):
    skip_if_not_applicable("generation")
    tokens = batch["inputs"][:4]
    length = 1 if prompt == "one token" else tokens.size(1) // 2
    assert generation_problems(model, tokens[:, :length], tokens.size(1) - length) == []


def test_sampling_repeats_with_its_generator_and_changes_without(
    model, batch, skip_if_not_applicable
):
    skip_if_not_applicable("generation")
    tokens = batch["inputs"][:4]
    model.eval()
    prompt, n = tokens[:, :1], tokens.size(1) - 1

    def sample(seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return paper_model.generate(model, prompt, n, generator, temperature=2.0)

    first = sample(0)
    assert torch.equal(first, sample(0)), "the same generator drew other tokens"
    assert not torch.equal(first, sample(1)), "another seed drew the same tokens"
