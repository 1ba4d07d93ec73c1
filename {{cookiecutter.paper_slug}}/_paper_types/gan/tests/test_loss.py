"""Loss and metrics (phases 3 and 5): the gradient penalty by hand, the
independent-pixel baseline's marginals and the Frechet distance."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from {{ cookiecutter.package_name }}.loss import (
    frechet_distance,
    gradient_penalty,
    independent_pixel_samples,
    interpolates,
)


class Quadratic(nn.Module):
    """D(x) = ||x||^2 / 2, whose gradient at x is x."""

    def forward(self, x):
        return 0.5 * x.pow(2).sum(dim=1)


def test_gradient_penalty_by_hand():
    # Rows of norm 0.5, 1 and 3: (||x|| - 1)^2 = 0.25, 0 and 4. A one-sided penalty
    # (max(0, ||g|| - 1)^2) gives 0 for the first; the squared norm (||g||^2 - 1)^2
    # 0.5625 and 64; one norm over the whole batch the same number in every row.
    x = torch.zeros(3, 64)
    x[0, 0], x[1, 5], x[2, :9] = 0.5, -1.0, 1.0
    penalty = gradient_penalty(Quadratic(), x)
    assert torch.allclose(penalty, torch.tensor([0.25, 0.0, 4.0]), atol=1e-6)


def test_interpolates_by_hand():
    # eps = 1 is the real image, eps = 0 the generated one, and each row has its own.
    real, fake = torch.ones(3, 64), -torch.ones(3, 64)
    eps = torch.tensor([[1.0], [0.0], [0.25]])
    x_hat = interpolates(real, fake, eps)
    assert torch.equal(x_hat[:, 0], torch.tensor([1.0, -1.0, -0.5]))


def test_independent_pixel_samples_follow_each_pixel_s_marginal():
    # One pixel, three training images at levels 0, 0 and 16: add-one smoothed
    # frequencies (2 + 1) / 20 for level 0 (-1), (1 + 1) / 20 for 16 (1), 1/20 else.
    train = torch.tensor([[-1.0], [-1.0], [1.0]])
    samples = independent_pixel_samples(train, 40000, torch.Generator().manual_seed(0))
    assert (samples == -1).float().mean().item() == pytest.approx(3 / 20, abs=0.01)
    assert (samples == 1).float().mean().item() == pytest.approx(2 / 20, abs=0.01)
    assert (samples == 0).float().mean().item() == pytest.approx(1 / 20, abs=0.01)


{% include "_paper_types/_shared/test_frechet.py" %}