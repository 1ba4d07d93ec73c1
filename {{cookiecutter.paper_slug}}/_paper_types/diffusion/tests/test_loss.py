"""Loss and metrics (phases 3 and 5): L_simple's reduction, the bound's pieces by
hand and against torch.distributions, the baseline and the Frechet distance."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from {{ cookiecutter.package_name }}.loss import (
    discretised_nll,
    frechet_distance,
    gaussian_kl,
    independent_pixel_bpd,
    loss_fn,
)


def test_l_simple_is_the_mean_over_examples_and_pixels():
    generator = torch.Generator().manual_seed(0)
    outputs, noise = (
        torch.randn(2, 64, generator=generator),
        torch.randn(2, 64, generator=generator),
    )
    by_hand = (
        sum((o - n) ** 2 for o, n in zip(outputs.flatten(), noise.flatten(), strict=True)) / 128
    )
    assert loss_fn(outputs, {"noise": noise}, None).item() == pytest.approx(
        by_hand.item(), rel=1e-5
    )
    # Duplicating every example leaves a mean unchanged.
    doubled = loss_fn(torch.cat([outputs, outputs]), {"noise": torch.cat([noise, noise])}, None)
    assert doubled.item() == pytest.approx(loss_fn(outputs, {"noise": noise}, None).item())


def test_gaussian_kl_equals_torch_distributions():
    generator = torch.Generator().manual_seed(0)
    mean_q, mean_p = (
        torch.randn(3, 64, generator=generator),
        torch.randn(3, 64, generator=generator),
    )
    ours = gaussian_kl(mean_q, 0.3, mean_p, 0.7)
    reference = kl_divergence(Normal(mean_q, math.sqrt(0.3)), Normal(mean_p, math.sqrt(0.7)))
    # torch.allclose: torch.testing.assert_close imports sympy on its first call (~0.7 s).
    assert torch.allclose(ours, reference.sum(dim=1), rtol=1e-5)


def test_discretised_decoder_is_a_distribution_over_the_17_levels():
    # For any mean and spread, the 17 levels' probabilities sum to 1: the end
    # levels take the tails. Intervals without the open ends miss mass; intervals
    # 1/8 wide instead of 1/16 either side count it twice.
    levels = torch.arange(17, dtype=torch.float64) / 8 - 1
    for mean, std in ((0.3, 0.01), (-0.97, 0.2), (1.4, 0.5), (0.0, 3.0)):
        x0 = levels.unsqueeze(1)  # 17 "images" of one pixel, one per level
        probabilities = torch.exp(-discretised_nll(x0, torch.full_like(x0, mean), std))
        assert probabilities.sum().item() == pytest.approx(1.0, abs=1e-9), (mean, std)
    # By hand: the level 0.25 under N(0.25, 0.01^2) owns +-6.25 sigma, all the mass.
    x0 = torch.tensor([[0.25]], dtype=torch.float64)
    assert discretised_nll(x0, x0, 0.01).item() == pytest.approx(0.0, abs=1e-9)


def test_independent_pixel_baseline_by_hand():
    # One pixel, three training images at levels 0, 0 and 16: add-one smoothed
    # frequencies (2 + 1) / 20 for level 0 and (1 + 1) / 20 for level 16. The image
    # at level 0 then costs -log2(3/20) bits. No smoothing, or frequencies from the
    # evaluated images, give other numbers.
    train = torch.tensor([[-1.0], [-1.0], [1.0]])
    assert independent_pixel_bpd(train, torch.tensor([[-1.0]])) == pytest.approx(-math.log2(3 / 20))


{% include "_paper_types/_shared/test_frechet.py" %}