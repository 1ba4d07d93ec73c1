"""Transformer pitfalls: the causal mask, the attention maths, positional encoding.

Each of these bugs still trains and still lowers the loss, which is why they survive
into reproductions: a leaky mask looks like a great result, a missing 1/sqrt(d)
trains a little worse, and forgotten positions cap accuracy on order-dependent tasks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from {{ cookiecutter.package_name }}.model import (
    attention,
    build_model,
    causal_keep_mask,
)


def test_causal_mask_blocks_the_future_and_only_the_future(model, batch, forward_with_input_grad):
    model.eval()
    t = 7
    logits, views = forward_with_input_grad(model, batch["inputs"][:1])
    (x,) = views.values()  # the token embeddings
    logits[0, t].sum().backward()
    grad = x.grad[0].abs().sum(dim=-1)  # one number per input position
    assert torch.all(grad[t + 1 :] == 0), "position t sees later tokens: the mask leaks"
    assert torch.all(grad[: t + 1] > 0), "position t ignores some earlier tokens"


def test_attention_equals_pytorch_reference():
    # The reference uses the same mask convention (True = may attend). A missing or
    # wrong 1/sqrt(d) scale, or a mask applied after softmax, fails here.
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8) for _ in range(3))
    keep = causal_keep_mask(5)
    ours = attention(q, k, v, keep)
    reference = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    # torch.allclose: torch.testing.assert_close imports sympy on its first call (~0.7 s).
    assert torch.allclose(ours, reference, atol=1e-6)
    assert torch.allclose(ours, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-6)


def swap_first_two(tokens: torch.Tensor) -> torch.Tensor:
    swapped = tokens.clone()
    swapped[:, [0, 1]] = tokens[:, [1, 0]]
    return swapped


def test_positional_encoding_is_applied(cfg, data_spec, batch):
    # Attention sums over keys, so without positions the last output of a one-layer
    # model depends only on the multiset of tokens: swapping two changes nothing.
    # (With several causal layers, position 0's hidden state sees one token and
    # position 1's sees two, which leaks some order even without an encoding; one
    # layer isolates the encoding itself.)
    inputs = batch["inputs"][:4]
    assert not torch.equal(inputs[:, 0], inputs[:, 1])
    for positional in (True, False):
        m = cfg.model.copy()
        m.positional_encoding = positional
        m.n_layers = 1
        torch.manual_seed(0)
        model = build_model(m, data_spec).eval()
        with torch.no_grad():
            last = model(inputs)[:, -1]
            last_swapped = model(swap_first_two(inputs))[:, -1]
        order_matters = not torch.allclose(last, last_swapped, atol=1e-5)
        assert order_matters == positional, f"positional_encoding={positional}"
