"""Loss (phase 3): known values, the reduction, and agreement with PyTorch."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from {{ cookiecutter.package_name }}.loss import (
    LossConfig,
    loss_fn,
    reconstruction_nll,
)

PLAIN = LossConfig(kl_weight=1.0)


def test_reconstruction_known_values_and_binary_cross_entropy():
    x = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    assert reconstruction_nll(torch.zeros(1, 4), x).item() == pytest.approx(4 * math.log(2))
    torch.manual_seed(0)
    logits, x = 10 * torch.randn(3, 64), torch.randint(2, (3, 64)).float()
    expected = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1)
    # torch.allclose: torch.testing.assert_close imports sympy on its first call (~0.7 s).
    assert torch.allclose(reconstruction_nll(logits, x), expected, rtol=1e-5, atol=1e-5)


def test_loss_sums_over_pixels_and_latents_and_averages_over_the_batch():
    torch.manual_seed(0)
    outputs = {"logits": torch.randn(2, 64), "mu": torch.randn(2, 8), "logvar": torch.randn(2, 8)}
    x = torch.randint(2, (2, 64)).float()
    recon = F.binary_cross_entropy_with_logits(outputs["logits"], x, reduction="sum")
    kl = 0.5 * (outputs["mu"] ** 2 + outputs["logvar"].exp() - 1 - outputs["logvar"]).sum()
    # Sum over pixels and latents, then the mean over the 2 examples of the batch.
    assert loss_fn(outputs, {"inputs": x}, PLAIN).item() == pytest.approx((recon + kl).item() / 2)
    # The KL weight (beta) scales the KL term only; 0 leaves the reconstruction.
    beta = loss_fn(outputs, {"inputs": x}, LossConfig(kl_weight=0.25)).item()
    assert beta == pytest.approx((recon + 0.25 * kl).item() / 2)
    # Duplicating every example leaves a per-example mean unchanged.
    doubled = {k: torch.cat([v, v]) for k, v in outputs.items()}
    assert loss_fn(doubled, {"inputs": torch.cat([x, x])}, PLAIN).item() == pytest.approx(
        loss_fn(outputs, {"inputs": x}, PLAIN).item()
    )
