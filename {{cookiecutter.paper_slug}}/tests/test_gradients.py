"""Gradients reach every parameter, never mix examples, and the loss is differentiable."""

from __future__ import annotations

import torch

from {{ cookiecutter.package_name }}.loss import (
    loss_fn,
)


def output_tensors(outputs) -> list[torch.Tensor]:
    """A model may return one tensor or a dict of them (e.g. logits, mu, logvar)."""
    return list(outputs.values()) if isinstance(outputs, dict) else [outputs]


def like_outputs(outputs, tensors: list[torch.Tensor]):
    """The inverse of ``output_tensors``: the same structure around new tensors."""
    return dict(zip(outputs, tensors, strict=True)) if isinstance(outputs, dict) else tensors[0]


def test_every_parameter_gets_a_finite_nonzero_gradient(model, batch):
    # Stronger than "parameters changed after a step": AdamW's weight decay moves
    # parameters even when their gradient is zero (a detached branch, say).
    loss_fn(model(batch["inputs"]), batch).backward()
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        assert param.grad is not None, f"{name} received no gradient (not in the graph?)"
        assert torch.isfinite(param.grad).all(), f"{name} has a non-finite gradient"
        assert param.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


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


def test_loss_passes_gradcheck(model, batch):
    # Finite differences vs autograd in float64, on a few examples: catches a loss
    # whose hand-written backward path (e.g. a custom reduction) is wrong.
    small = {name: tensor[:2] for name, tensor in batch.items()}
    with torch.no_grad():
        outputs = model(small["inputs"])
    tensors = [t.double().requires_grad_(True) for t in output_tensors(outputs)]
    # Float targets (pixels, returns) in float64 too, so the loss runs in float64.
    targets = {name: t.double() if t.is_floating_point() else t for name, t in small.items()}
    assert torch.autograd.gradcheck(
        lambda *ts: loss_fn(like_outputs(outputs, list(ts)), targets), tensors
    )
