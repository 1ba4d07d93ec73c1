"""Gradients reach every parameter, never mix examples, and the loss is differentiable."""

from __future__ import annotations

import torch

import {{ cookiecutter.package_name }}.gauntlet as gauntlet
from {{ cookiecutter.package_name }}.gauntlet import (
    gradient_problems,
    loss_gradcheck,
    output_tensors,
)


def test_every_parameter_gets_a_finite_nonzero_gradient(model, batch, cfg):
    # Stronger than "parameters changed after a step": AdamW's weight decay moves
    # parameters even when their gradient is zero (a detached branch, say).
    assert gradient_problems(model, batch, cfg.loss) == []


def test_examples_in_a_batch_are_independent(model, batch, forward_with_input_grad):
    # d(output of example i) / d(input of example j) must be exactly zero for j != i.
    # A reshape or transpose that mixes the batch dimension breaks this. (BatchNorm
    # in training mode mixes examples on purpose: that is why this runs in eval mode.)
    model.eval()
    i = 3
    outputs, x = forward_with_input_grad(model, batch["inputs"])
    sum(tensor[i].sum() for tensor in output_tensors(outputs)).backward()
    grad = x.grad.flatten(1).abs().sum(dim=1)  # one number per example
    others = torch.cat([grad[:i], grad[i + 1 :]])
    assert grad[i] > 0, "example i's output does not depend on its own input"
    assert torch.all(others == 0), f"example {i}'s output depends on other examples: {grad}"


def test_loss_passes_gradcheck(model, batch, cfg):
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


def test_gradcheck_catches_a_wrong_backward(model, batch, cfg, monkeypatch):
    real = gauntlet.loss_fn
    monkeypatch.setattr(gauntlet, "loss_fn", lambda *args: WrongBackward.apply(real(*args)))
    assert not loss_gradcheck(model, batch, cfg.loss)
