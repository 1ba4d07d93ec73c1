"""Generative (VAE) pitfalls: a wrong KL, a sample gradients cannot pass through,
targets a Bernoulli cannot model, and a latent code nobody uses.

Each of these still trains and produces plausible pictures, which is why they
survive into reproductions; the ELBO they report is simply not the ELBO.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from {{ cookiecutter.package_name }}.data import (
    read_digits,
)
from {{ cookiecutter.package_name }}.loss import (
    active_units,
    gaussian_kl,
    independent_pixel_nll,
    mmd,
    reconstruction_nll,
    sample_mmd,
    split_metrics,
    summarise,
)


def random_posterior(n: int = 32, d: int = 8, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    mu = 2 * torch.randn(n, d, generator=generator)
    logvar = 2 * torch.randn(n, d, generator=generator)
    return mu, logvar


def test_closed_form_kl_equals_torch_distributions():
    mu, logvar = random_posterior()
    q, p = Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)
    # torch.allclose: torch.testing.assert_close imports sympy on its first call (~0.7 s).
    assert torch.allclose(gaussian_kl(mu, logvar), kl_divergence(q, p).sum(dim=1), atol=1e-5)


def test_kl_is_zero_for_the_prior_and_never_negative():
    zeros = torch.zeros(4, 8)
    assert torch.equal(gaussian_kl(zeros, zeros), torch.zeros(4))
    for seed in range(5):
        assert (gaussian_kl(*random_posterior(seed=seed)) >= 0).all()


def test_kl_agrees_with_a_monte_carlo_estimate():
    mu, logvar = random_posterior(n=4, d=3)
    q = Normal(mu, torch.exp(0.5 * logvar))
    torch.manual_seed(0)
    z = q.sample((200_000,))
    estimate = (q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(dim=-1).mean(dim=0)
    assert torch.allclose(estimate, gaussian_kl(mu, logvar), rtol=0.02, atol=0.05)


def test_reconstruction_gradients_reach_the_encoder_through_the_sample(model, batch):
    # The reconstruction term alone, no KL: only the reparameterised sample links
    # the decoder's loss to the encoder. With .sample() these gradients are zero.
    outputs = model(batch["inputs"])
    reconstruction_nll(outputs["logits"], batch["inputs"]).mean().backward()
    for name, param in model.named_parameters():
        if name.startswith(("encoder", "to_mu", "to_logvar")):
            assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_bernoulli_targets_are_in_zero_one(splits):
    for split in splits.values():
        x = split["inputs"]
        assert ((x == 0) | (x == 1)).all(), "a Bernoulli likelihood needs targets in [0, 1]"


def test_active_units_are_counted_and_reported(model, splits, cfg, tmp_path):
    x = splits["val"]["inputs"]
    model.eval()
    with torch.no_grad():
        summary = summarise(model, splits, tmp_path)
        reported = split_metrics(model, splits["val"], cfg)  # val/active_units in the logs
        # Force a collapsed unit: a zero row in the mu head makes it constant.
        model.to_mu.weight[0].zero_()
        collapsed = active_units(model, x, threshold=0.0)
    assert 0 <= reported["active_units"] <= cfg.model.latent_dim
    assert collapsed == cfg.model.latent_dim - 1
    assert summary == {}
    png = (tmp_path / "samples.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and b"IEND" in png[-12:]


def test_active_units_by_hand():
    # Posterior means over 4 inputs with variances 0, ~0.005 and ~0.02 per unit and
    # the threshold 0.01 between them: 1 unit is active. The standard deviations
    # (0, ~0.07, ~0.15) are all above 0.01 but the first, so a count on them gives 2;
    # a variance over the units instead of the inputs gives another number again.
    signs = torch.tensor([1.0, -1.0, 1.0, -1.0])
    mu = torch.stack([0 * signs, 0.07 * signs, 0.15 * signs], dim=1)

    class FixedEncoder:
        def encode(self, x):
            return mu, torch.zeros_like(mu)

    assert active_units(FixedEncoder(), torch.zeros(4, 2), threshold=0.01) == 1


class FixedDecoder:
    """A "model" whose samples have the same pixel probabilities whatever z is."""

    latent_dim = 2

    def __init__(self, logits: torch.Tensor):
        self.logits = logits

    def decoder(self, z: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(z), -1)


def test_mmd_is_zero_for_the_same_images_and_grows_with_the_mismatch():
    images = torch.tensor(read_digits()[0][:200] / 16 >= 0.5, dtype=torch.float32)
    assert mmd(images, images.flip(0)) == pytest.approx(0, abs=1e-12)  # same set
    # Samples with each pixel on at its own frequency (the independent-pixel model)
    # are closer to the digits than fair coin flips are, and both are far from 0.
    frequency = images.mean(dim=0).clamp(0.01, 0.99)
    per_pixel = sample_mmd(FixedDecoder((frequency / (1 - frequency)).log()), images)
    coins = sample_mmd(FixedDecoder(torch.zeros(64)), images)
    assert 0.01 < per_pixel < coins, (per_pixel, coins)


def test_independent_pixel_baseline_by_hand():
    # Two training images, [1, 0] and [1, 1]: add-one smoothed pixel frequencies
    # (2 + 1) / 4 and (1 + 1) / 4. The image [1, 0] then costs -ln(3/4) - ln(1 - 1/2)
    # nats. Frequencies taken from the evaluated images, no smoothing, or a mean over
    # the pixels instead of the sum give other numbers.
    train = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    x = torch.tensor([[1.0, 0.0]])
    expected = -math.log(3 / 4) - math.log(1 / 2)
    assert independent_pixel_nll(train, x) == pytest.approx(expected)


def test_sample_is_mu_plus_sigma_times_noise_with_sigma_from_half_logvar(model, batch):
    # logvar is log(sigma^2): sigma = exp(0.5 * logvar), not exp(logvar). At
    # initialisation logvar is about 0, where both give sigma = 1: shift it to about
    # 2 so that they differ (sigma e or e^2).
    x = batch["inputs"]
    eps = torch.randn(len(x), model.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.to_logvar.bias.fill_(2.0)
        mu, logvar = model.encode(x)
        expected = model.decoder(mu + torch.exp(0.5 * logvar) * eps)
        assert torch.allclose(model(x, noise=eps)["logits"], expected, atol=1e-5)
        # Without given noise, the sample is random: two passes differ.
        assert not torch.equal(model(x)["logits"], model(x)["logits"])


@pytest.mark.slow  # imports sklearn.datasets (~0.8 s)
def test_the_digits_read_from_the_file_are_load_digits():
    from sklearn.datasets import load_digits

    pixels, labels = read_digits()
    digits = load_digits()
    assert np.array_equal(pixels, digits.data) and np.array_equal(labels, digits.target)
