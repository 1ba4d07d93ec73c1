"""Diffusion (DDPM) pitfalls: the bugs that train happily and sample garbage.

An off-by-one in alpha_bar, a posterior mean with a wrong coefficient, a time step
the network never sees: L_simple falls as usual with each of them (it only asks
for the noise added at one step), so the training curve cannot tell. Each test
here is built on inputs where the plausible wrong version gives another answer.
"""

from __future__ import annotations

import math

import pytest
import torch

from {{ cookiecutter.package_name }}.configs.schema import (
    compose_config,
)
from {{ cookiecutter.package_name }}.data import (
    level_posterior_mean,
    noise_from_x0,
    noised,
    schedule,
    spec,
    train_batches,
)
from {{ cookiecutter.package_name }}.loss import (
    independent_pixel_bpd,
    level_frequencies,
    loss_fn,
    posterior,
    reverse_mean,
    reverse_step,
    sample,
    split_metrics,
    variational_bound,
)
from {{ cookiecutter.package_name }}.model import (
    timestep_embedding,
)


@pytest.fixture(scope="module")
def paper_spec():
    """The data spec of the default config: the paper's schedule (T = 1000 from beta_1
    = 1e-4), where the tests' tiny one (conftest.TEST_SCALE) has 20 coarse steps. The
    tests of the bound's tightness need the paper's: with 20 steps even an exact
    predictor's bound is far from the likelihood. No model is built at this size."""
    return spec(compose_config().data)


def test_closed_form_q_equals_the_iterated_forward_process(data_spec):
    """q(x_t | x0) of data.noised against T single steps x_t = sqrt(1 - beta_t)
    x_{t-1} + sqrt(beta_t) eps, whose mean m and variance v follow m_t = sqrt(alpha_t)
    m_{t-1} and v_t = alpha_t v_{t-1} + beta_t from x0 (v = 0). noised is linear in
    x0 and eps: its mean is noised(x0, t, 0), its standard deviation noised(0, t, 1).
    An abar that is the product up to t - 1, or is not square-rooted, is off here."""
    betas = torch.tensor(data_spec["betas"], dtype=torch.float64)
    alpha_bars = schedule(data_spec)["alpha_bars"]
    steps = torch.arange(len(betas))
    ones = torch.ones(len(betas), 1)
    mean_coefficient = noised(ones, steps, 0 * ones, alpha_bars).squeeze(1).double()
    std = noised(0 * ones, steps, ones, alpha_bars).squeeze(1).double()
    m, v = 1.0, 0.0
    for t, beta in enumerate(betas.tolist()):
        m, v = math.sqrt(1 - beta) * m, (1 - beta) * v + beta
        assert mean_coefficient[t].item() == pytest.approx(m, rel=1e-5), t
        assert std[t].item() == pytest.approx(math.sqrt(v), rel=1e-5), t


class Oracle(torch.nn.Module):
    """The perfect noise predictor for a data set of one image x0: it inverts the
    training noising, data.noised (linear in eps), so it is right exactly when the
    caller means by t what training means by t."""

    def __init__(self, x0: torch.Tensor, alpha_bars: torch.Tensor):
        super().__init__()
        self.x0, self.alpha_bars = x0, alpha_bars

    def forward(self, inputs):
        x0 = self.x0.expand_as(inputs["x_t"])
        mean = noised(x0, inputs["t"], torch.zeros_like(x0), self.alpha_bars)
        std = noised(torch.zeros_like(x0), inputs["t"], torch.ones_like(x0), self.alpha_bars)
        return (inputs["x_t"] - mean) / std


def test_sampler_indexes_alpha_bar_as_training_noising_does(data_spec, splits):
    """Each step of the sampler, with the perfect noise predictor, must give the mean
    of x_{t-1} given x_t and x0 where x_t is noised as in training. That mean is
    derived here from training's noising alone (data.noised at t - 1: the prior of
    x_{t-1}) and the one step q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t):
    a sampler that takes abar_{t-1} where training noised with abar_t, or asks the
    model about t + 1, is off. Then the whole of Algorithm 2, driven by the same
    predictor, lands on the image from any noise: the last step adds none."""
    sched = schedule(data_spec)
    x0 = splits["train"]["x0"][:1].double()
    oracle = Oracle(x0, sched["alpha_bars"])
    generator = torch.Generator().manual_seed(0)
    for t in range(1, len(sched["betas"])):
        eps = torch.randn(x0.shape, generator=generator, dtype=torch.float64)
        steps = torch.tensor([t])
        x_t = noised(x0, steps, eps, sched["alpha_bars"]).double()
        zero = torch.zeros_like(x0)
        prior_mean = noised(x0, steps - 1, zero, sched["alpha_bars"]).double()
        prior_var = noised(zero, steps - 1, torch.ones_like(x0), sched["alpha_bars"]).double() ** 2
        beta = sched["betas"][t].item()
        precision = 1 / prior_var + (1 - beta) / beta
        bayes = (prior_mean / prior_var + math.sqrt(1 - beta) * x_t / beta) / precision
        stepped = reverse_step(oracle, sched, x_t, t, torch.zeros_like(x0))
        assert torch.allclose(stepped, bayes, rtol=1e-4, atol=1e-4), t
    samples, _ = sample(oracle, data_spec, 16, generator, torch.device("cpu"))
    assert (samples - x0).abs().max() < 1e-3, (samples - x0).abs().max()


def test_reverse_mean_with_the_true_noise_is_the_posterior_mean(paper_spec, splits):
    """Given the noise that made x_t, the sampler's mean mu_theta (eq. 11) must be
    the mean of q(x_{t-1} | x_t, x0), derived here by Bayes' rule from the prior
    q(x_{t-1} | x0) = N(sqrt(abar_{t-1}) x0, 1 - abar_{t-1}) and the step
    q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t): precision-weighted means.
    A coefficient beta_t / (1 - abar_t) without its square root, or 1 / alpha_t for
    1 / sqrt(alpha_t), is off at every t. Also checks posterior() (the bound's)."""
    sched = schedule(paper_spec)
    x0 = splits["train"]["x0"][:4].double()
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for t in (1, 2, 10, 300, len(sched["betas"]) - 1):
        abar, abar_prev = sched["alpha_bars"][t].item(), sched["alpha_bars"][t - 1].item()
        alpha, beta = sched["alphas"][t].item(), sched["betas"][t].item()
        x_t = math.sqrt(abar) * x0 + math.sqrt(1 - abar) * eps
        precision = 1 / (1 - abar_prev) + alpha / beta
        bayes = (
            math.sqrt(abar_prev) * x0 / (1 - abar_prev) + math.sqrt(alpha) * x_t / beta
        ) / precision
        assert torch.allclose(reverse_mean(sched, x_t, t, eps), bayes, atol=1e-9), t
        mean, variance = posterior(sched, x0, x_t, t)
        assert torch.allclose(mean, bayes, atol=1e-9), t
        assert variance == pytest.approx(1 / precision, rel=1e-9), t


def test_the_network_output_depends_on_the_time_step(model, batch):
    """The same x_t at three time steps gives three priors over the levels. A
    timestep embedding fed a constant (t * 0, t cast to an integer after scaling to
    [0, 1), the embedding's result dropped) gives one. The network's own output is
    checked, not eps_hat: the Bayes step after it reads t from the schedule, and
    would make eps_hat depend on t even with the embedding broken. The output
    layer starts near 0, so it is scaled up first: differences then show at the
    size of the features."""
    with torch.no_grad():
        model.out.weight.normal_(std=0.1)
        x_t = batch["inputs"]["x_t"][:4]
        outputs = [
            model.level_logits({"x_t": x_t, "t": torch.full((4,), t, dtype=torch.int64)})
            for t in (0, 1, 999)
        ]
    for a, b in ((0, 1), (1, 2), (0, 2)):
        assert (outputs[a] - outputs[b]).abs().mean() > 1e-3, (a, b)
    # The embedding itself, by hand at t = 0 (sin 0, cos 0) and at t = 1 (its fastest
    # frequency is 1 radian per step).
    embedding = timestep_embedding(torch.tensor([0, 1]), 8)
    assert torch.allclose(embedding[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    assert embedding[1, 0].item() == pytest.approx(math.sin(1.0))


def test_loss_target_is_the_noise_that_was_added(cfg, splits, data_spec):
    """A training batch's x_t is sqrt(abar_t) x0 + sqrt(1 - abar_t) * noise with the
    batch's own noise (recomputed here from the betas), and L_simple is 0 exactly
    for outputs equal to that noise: not for x0, not for x_t."""
    batch = next(train_batches(cfg.data, splits["train"], 64, torch.Generator().manual_seed(0)))
    betas = torch.tensor(data_spec["betas"], dtype=torch.float64)
    abar = torch.cumprod(1 - betas, dim=0)[batch["inputs"]["t"]].unsqueeze(1)
    x_t = abar.sqrt() * batch["x0"] + (1 - abar).sqrt() * batch["noise"]
    assert torch.allclose(batch["inputs"]["x_t"].double(), x_t, atol=1e-5)
    assert loss_fn(batch["noise"], batch, cfg.loss).item() == 0.0
    for wrong in (batch["x0"], batch["inputs"]["x_t"], torch.zeros_like(batch["x0"])):
        assert loss_fn(wrong, batch, cfg.loss).item() > 0.3


@pytest.mark.parametrize(
    "overrides",
    [
        (),
        ("experiment=tiny",),
        ("experiment=reference",),
        ("experiment=reference", "ablation=few_steps"),
    ],
    ids=["default", "tiny", "reference", "few_steps"],
)
def test_alpha_bar_T_is_near_zero_so_x_T_is_pure_noise(overrides):
    """Sampling starts from N(0, I), which is only right if q(x_T | x0) is N(0, I)
    too: abar_T ~ 0. Betas too small for the number of steps (a beta_end of 0.002,
    or the paper's betas for T = 1000 kept with T = 100, as a fewer-steps ablation
    easily does) leave the image in x_T, and samples start from the wrong
    distribution; the bound's prior term L_T says so too."""
    cfg = compose_config(*overrides)
    data_spec = spec(cfg.data)
    abar_last = schedule(data_spec)["alpha_bars"][-1].item()
    assert abar_last < 1e-2, abar_last
    if cfg.data.num_steps >= 1000:  # the paper's schedule: 4e-5
        assert abar_last < 1e-4, abar_last


def test_the_bound_of_the_perfect_predictor_is_zero_but_for_the_decoder(paper_spec, splits):
    """With the perfect noise predictor of one image, the means of p_theta and q
    agree at every step, and so do their variances (sigma_t^2 = beta~_t): every
    L_{t-1} is 0, and the decoder puts (nearly) all of its mass on the image's level.
    A bound built on another index of abar, or on another variance than the
    sampler's (beta_t: 10 nats here), misses this."""
    sched = schedule(paper_spec)
    x0 = splits["train"]["x0"][:1]
    oracle = Oracle(x0, sched["alpha_bars"])
    terms = variational_bound(oracle, paper_spec, x0, torch.Generator().manual_seed(0))
    assert terms["diffusion"].item() == pytest.approx(0.0, abs=1e-3)
    assert terms["decoder"].item() < 1e-6


class IndependentPixels(torch.nn.Module):
    """The exact noise predictor of the independent-pixel model: each pixel's level
    drawn from its training frequencies, E[x0 | x_t] by Bayes' rule over the
    levels, the noise that x0 implies. Built from data.py's Bayes step with the
    frequencies as the prior, the way model.py uses it with the network's."""

    def __init__(self, train: torch.Tensor, alpha_bars: torch.Tensor):
        super().__init__()
        self.log_prior, self.alpha_bars = level_frequencies(train).log().float(), alpha_bars

    def forward(self, inputs):
        x_t, t = inputs["x_t"], inputs["t"]
        prior = self.log_prior.expand(len(x_t), -1, -1)
        x0_hat = level_posterior_mean(x_t, t, self.alpha_bars, prior)
        return noise_from_x0(x_t, t, x0_hat, self.alpha_bars)


def test_the_bound_of_independent_pixels_is_just_above_their_exact_likelihood(paper_spec, splits):
    """The bound against a likelihood computed another way: for the independent-pixel
    model, -log2 p(x0) per pixel is a sum of level frequencies (loss.py's baseline),
    and the bound of its exact noise predictor must lie above it (a bound), but
    not by much (its predictor is exact; what is left is the Gaussian steps' own
    gap, ~0.13 bits on the paper's schedule). A KL without its 1/2, a posterior
    mean with x0's coefficient not square-rooted, or the sampler's variance
    beta_t where q's is beta~_t, leaves this window. (The decoder and L_T add
    ~0 here: the first step's noise, 0.01, is far finer than the levels' gap;
    tests/test_loss.py checks the decoder.)"""
    sched = schedule(paper_spec)
    train, x0 = splits["train"]["x0"], splits["test"]["x0"][:32]
    model = IndependentPixels(train, sched["alpha_bars"])
    terms = variational_bound(model, paper_spec, x0, torch.Generator().manual_seed(0))
    bound = float(sum(terms.values()).mean() / (64 * math.log(2)))
    exact = independent_pixel_bpd(train, x0)
    assert exact < bound < exact + 0.25, (bound, exact)


def test_sampling_is_seeded_and_repeatable(model, data_spec, splits, cfg):
    """The same generator seed gives the same samples and another seed other ones,
    and the global random state is left alone (a validation must not shift the
    training's random stream)."""
    device = torch.device("cpu")
    before = torch.get_rng_state()
    small = {**data_spec, "betas": data_spec["betas"][:50]}
    a, _ = sample(model, small, 8, torch.Generator().manual_seed(3), device)
    b, _ = sample(model, small, 8, torch.Generator().manual_seed(3), device)
    c, _ = sample(model, small, 8, torch.Generator().manual_seed(4), device)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.slow  # two validations of the default config: 2 x 2000 forward passes (~4 s)
def test_split_metrics_repeat_exactly(model, splits, cfg):
    model.eval()
    assert split_metrics(model, splits["val"], cfg) == split_metrics(model, splits["val"], cfg)
