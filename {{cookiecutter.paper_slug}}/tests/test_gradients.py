"""Gradients reach every parameter, never mix examples, and the loss is differentiable."""

from __future__ import annotations

import pytest
import torch

import {{ cookiecutter.package_name }}.judge.diagnostics as diagnostics
from {{ cookiecutter.package_name }}.engine.batches import (
    map_tensors,
    named_tensors,
)
from {{ cookiecutter.package_name }}.judge.diagnostics import (
    gradient_problems,
    loss_gradcheck,
    output_tensors,
)


def test_every_parameter_gets_a_finite_nonzero_gradient(model, batch, cfg, skip_if_not_applicable):
    skip_if_not_applicable("gradient flow")
    # Stronger than "parameters changed after a step": AdamW's weight decay moves
    # parameters even when their gradient is zero (a detached branch, say).
    assert gradient_problems(model, batch, cfg.loss) == []


def test_examples_in_a_batch_are_independent(
    model, batch, forward_with_input_grad, skip_if_not_applicable
):
    skip_if_not_applicable("batch independence")
    # d(output of example i) / d(input of example j) must be exactly zero for j != i.
    # A reshape or transpose that mixes the batch dimension breaks this. (BatchNorm
    # in training mode mixes examples on purpose: that is why this runs in eval mode.)
    # With a dict of inputs, with respect to each float one (x_t, an image); the
    # integer ones (a time step, a label) are the next test's.
    model.eval()
    i = 3
    outputs, views = forward_with_input_grad(model, batch["inputs"])
    total = sum(tensor[i].sum() for tensor in output_tensors(outputs))
    grads = torch.autograd.grad(total, list(views.values()), allow_unused=True)
    own = 0.0
    for name, grad in zip(views, grads, strict=True):
        if grad is None:  # an input this output does not use at all
            continue
        per_example = grad.flatten(1).abs().sum(dim=1)  # one number per example
        others = torch.cat([per_example[:i], per_example[i + 1 :]])
        assert torch.all(others == 0), f"example {i}'s output depends on other examples' {name}"
        own += per_example[i].item()
    assert own > 0, "example i's output does not depend on its own input"


def test_examples_do_not_see_each_other_s_integer_inputs(model, batch, skip_if_not_applicable):
    skip_if_not_applicable("batch independence")
    # Integer inputs (a time step, a label, token ids) have no gradient: change them
    # for every example but one and that example's output must stay as it was. A
    # time embedding computed over the batch (normalised by the batch's t, rolled,
    # broadcast from one example) fails here and passes the gradient test above.
    inputs = batch["inputs"]
    integer = [k for k, t in named_tensors(inputs).items() if not t.is_floating_point()]
    if not integer:
        pytest.skip("no integer inputs: the gradient test above covers every input")
    model.eval()
    i = 3

    def others_changed(t: torch.Tensor) -> torch.Tensor:
        if t.is_floating_point():
            return t
        changed = t.roll(1, dims=0)  # every example gets its neighbour's values...
        changed[i] = t[i]  # ...but example i keeps its own
        return changed

    def output_of_i(inputs) -> list[torch.Tensor]:
        # The same random draws both times (a model may sample noise in forward).
        with torch.no_grad(), torch.random.fork_rng():
            torch.manual_seed(0)
            return [t[i] for t in output_tensors(model(inputs))]

    before, after = output_of_i(inputs), output_of_i(map_tensors(others_changed, inputs))
    for a, b in zip(before, after, strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-6), (
            f"example {i}'s output changed when only other examples' {integer} changed"
        )


def test_loss_passes_gradcheck(model, batch, cfg, skip_if_not_applicable):
    skip_if_not_applicable("gradcheck")
    # Finite differences vs autograd in float64, on a few examples: catches a loss
    # whose hand-written backward path (e.g. a custom reduction) is wrong.
    assert loss_gradcheck(model, batch, cfg.loss)


class WrongBackward(torch.autograd.Function):
    """The identity on the way forward, twice the gradient on the way back: the kind
    of bug a hand-written backward (a custom CUDA kernel, a fused loss) can have."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return 2 * grad


def test_gradcheck_catches_a_wrong_backward(model, batch, cfg, monkeypatch, skip_if_not_applicable):
    skip_if_not_applicable("gradcheck")
    real = diagnostics.players_of
    for wrong in range(len(real(model))):  # each player's loss in turn

        def one_wrong(model, wrong=wrong):
            players = real(model)
            loss = players[wrong].loss
            wrapped = players[wrong]._replace(loss=lambda *args: WrongBackward.apply(loss(*args)))
            return [*players[:wrong], wrapped, *players[wrong + 1 :]]

        monkeypatch.setattr(diagnostics, "players_of", one_wrong)
        assert not loss_gradcheck(model, batch, cfg.loss), real(model)[wrong].name
