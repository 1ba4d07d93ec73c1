"""The hand-written AdamW (engine/optim.py) against PyTorch's (the schedules: test_recipe.py)."""

from __future__ import annotations

import io

import torch
from torch.optim.adam import adam

from {{ cookiecutter.package_name }}.engine.optim import (
    AdamW,
)


def two_layer_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.GELU(), torch.nn.Linear(7, 3))


def decay_groups(model: torch.nn.Module) -> list[dict]:
    params = list(model.parameters())
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.1},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


def train(model, optimizer, steps: int, x: torch.Tensor) -> None:
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        model(x).pow(2).mean().backward()
        optimizer.step()


def train_with_torch(model, steps: int, x: torch.Tensor, decoupled: bool = True) -> None:
    """``train`` with torch's own Adam arithmetic: AdamW (decoupled weight decay) or
    Adam + L2 (the decay added to the gradient). The functional form is what
    torch.optim.AdamW runs; building that class imports torch._dynamo (~1 s)."""
    groups = decay_groups(model)
    state = {p: (torch.zeros_like(p), torch.zeros_like(p), torch.zeros(())) for g in groups
             for p in g["params"]}  # fmt: skip
    for _ in range(steps):
        model.zero_grad(set_to_none=True)
        model(x).pow(2).mean().backward()
        for group in groups:
            for p in group["params"]:
                m, v, count = state[p]
                adam(
                    [p.data], [p.grad], [m], [v], [], [count], foreach=False,
                    decoupled_weight_decay=decoupled, amsgrad=False, beta1=0.9, beta2=0.98,
                    lr=1e-2, weight_decay=group["weight_decay"], eps=1e-8, maximize=False,
                )  # fmt: skip


def test_adamw_matches_torch_step_for_step():
    ours, theirs = two_layer_net(), two_layer_net()
    x = torch.randn(16, 5)
    train(ours, AdamW(decay_groups(ours), lr=1e-2, betas=(0.9, 0.98)), 30, x)
    train_with_torch(theirs, 30, x)
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        # torch.allclose: torch.testing.assert_close imports sympy on first use (0.7 s).
        assert torch.allclose(a, b, rtol=0, atol=1e-7), (a - b).abs().max()
    # Decoupled decay is not Adam + L2: that one would end elsewhere.
    l2 = two_layer_net()
    train_with_torch(l2, 30, x, decoupled=False)
    assert not torch.allclose(next(ours.parameters()), next(l2.parameters()), atol=1e-4)


def test_state_dict_round_trip_continues_identically():
    x = torch.randn(16, 5)
    straight = two_layer_net()
    train(straight, AdamW(decay_groups(straight), lr=1e-2, betas=(0.9, 0.98)), 10, x)
    stopped = two_layer_net()
    optimizer = AdamW(decay_groups(stopped), lr=1e-2, betas=(0.9, 0.98))
    train(stopped, optimizer, 5, x)
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)  # plain data: loads with weights_only
    buffer.seek(0)
    restored = AdamW(decay_groups(stopped), lr=0.5, betas=(0.5, 0.5))
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    train(stopped, restored, 5, x)
    for a, b in zip(straight.parameters(), stopped.parameters(), strict=True):
        assert torch.equal(a, b)
