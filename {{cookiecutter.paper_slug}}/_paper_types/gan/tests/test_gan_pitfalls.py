"""WGAN-GP pitfalls: the bugs that train without complaint and sample worse.

A penalty taken at the real images only, one interpolation coefficient for the whole
batch, a gradient taken without ``create_graph`` (the penalty then never reaches
the critic), a critic that mixes the examples of a batch, a critic step that also
pushes the generator: the losses still move, the samples still form, and only the
Frechet distance, many minutes later, says something is off. Each test here is
built on inputs where the plausible wrong version gives another answer.

The losses draw nothing: a batch carries its noise z and coefficients eps (data.py),
so the tests give the losses batches as training draws them, through the data's
own batch transform (``noisy``): a wrong eps drawn there is a wrong eps here.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import {{ cookiecutter.package_name }}.train as train_module
from {{ cookiecutter.package_name }}.configs.schema import (
    compose_config,
)
from {{ cookiecutter.package_name }}.data import (
    with_noise,
)
from {{ cookiecutter.package_name }}.engine.batches import (
    micro_batches,
)
from {{ cookiecutter.package_name }}.loss import (
    PLAYERS,
    baselines,
    critic_loss,
    generator_loss,
    split_metrics,
)


class Quadratic(nn.Module):
    """D(x) = ||x||^2 / 2: its gradient at x is x itself, so the penalty's gradient
    norm is the norm of the point it is taken at, which says where that was."""

    def forward(self, x):
        return 0.5 * x.pow(2).sum(dim=1)


class Linear(nn.Module):
    """D(x) = w . x + c with ||w|| = 1: a gradient of norm 1 everywhere, so the
    penalty is exactly 0 and each loss is its Wasserstein terms alone."""

    def __init__(self, num_pixels: int):
        super().__init__()
        w = torch.linspace(-1, 2, num_pixels)
        self.w = nn.Parameter(w / w.norm())
        self.c = nn.Parameter(torch.tensor(0.7))

    def forward(self, x):
        return x @ self.w + self.c


class Constant(nn.Module):
    """A generator whose every sample is the image ``value``."""

    def __init__(self, value: torch.Tensor, noise_dim: int):
        super().__init__()
        self.value, self.noise_dim = value, noise_dim

    def forward(self, z):
        return self.value.expand(len(z), -1) + 0 * z[:, :1]


def loss_cfg(penalty_weight: float):
    return type("LossCfg", (), {"penalty_weight": penalty_weight})()


def noisy(images: torch.Tensor, noise_dim: int, seed: int) -> dict:
    """A batch of ``images`` with z and eps drawn as training draws them: by the
    data's batch transform, from a data generator seeded ``seed``."""
    return with_noise(noise_dim, {"inputs": images}, torch.Generator().manual_seed(seed))


def probe(model, real_value, fake_value, n: int):
    """``model`` with a quadratic critic and a constant generator, and ``noisy``
    batches of ``n`` copies of the real image, one per seed: every term of the
    critic's loss but the penalty is then a known constant."""
    model.critic = Quadratic()
    model.generator = Constant(fake_value, model.generator.noise_dim)
    images = real_value.expand(n, -1).clone()
    return lambda seed: noisy(images, model.noise_dim, seed)


def test_the_penalty_is_taken_between_real_and_generated_images(model, data_spec):
    """Real images all 2u, generated ones all -u (u a unit vector, every pixel
    1/8), and D(x) = ||x||^2 / 2: the Wasserstein terms give 0.5 - 2 = -1.5, and at
    x_hat = eps 2u - (1 - eps) u the penalty is (|3 eps - 1| - 1)^2, whose mean for
    eps ~ U[0, 1] is 1/3 (by hand: 1/9 from eps < 1/3, 2/9 from the rest). Taken at
    the real images it is 1, at the generated ones 0; one eps for the whole batch
    lands anywhere in [0, 1] from batch to batch; eps ~ N(0, 1) gives 1.35."""
    u = torch.full((data_spec["num_pixels"],), 1 / 8)
    batches = probe(model, 2 * u, -u, n=4096)
    for seed in range(5):
        loss = critic_loss(model, batches(seed), loss_cfg(1.0)).item()
        assert loss == pytest.approx(-1.5 + 1 / 3, abs=0.03), (seed, loss)


def test_each_example_draws_its_own_interpolation_coefficient(model, data_spec):
    """The same probe in batches of 64, as many as the images have pixels: there an
    eps of shape [64] instead of [64, 1] broadcasts without an error, one eps per
    pixel instead of per image. The norm of x_hat is then ~1 in every row and the
    penalty ~0, where one eps per image gives 1/3 on average. Wherever the [64]
    comes from (the batch transform's draw or the loss's use of it), the batch the
    loss sees here is drawn as in training."""
    u = torch.full((data_spec["num_pixels"],), 1 / 8)
    batches = probe(model, 2 * u, -u, n=data_spec["num_pixels"])
    losses = [critic_loss(model, batches(seed), loss_cfg(1.0)).item() for seed in range(64)]
    assert sum(losses) / len(losses) == pytest.approx(-1.5 + 1 / 3, abs=0.03)


class Smooth(nn.Module):
    """A small critic with tanh units: smooth, so that finite differences of the
    penalty are exact (a LeakyReLU critic's input gradient jumps where a unit
    changes sign, and a difference across the jump means nothing)."""

    def __init__(self, num_pixels: int):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(num_pixels, 16), nn.Tanh(), nn.Linear(16, 1))

    def forward(self, x):
        return self.net(x).squeeze(-1)


def test_the_penalty_s_gradient_reaches_the_critic(model, batch, data_spec):
    """The penalty's gradient with respect to the critic's weights, as autograd
    computes it through the loss, against finite differences of the penalty along
    a random direction of those weights (float64, the batch's z and eps each time).
    Without create_graph=True the gradient of D(x_hat) is a constant: autograd
    says 0 where the differences do not, and the critic is never penalised."""
    model.critic = Smooth(data_spec["num_pixels"])
    model = model.double()
    batch = {key: value.double() for key, value in batch.items()}
    params = list(model.critic.parameters())

    def penalty() -> torch.Tensor:  # lambda * mean penalty, on the batch's z and eps
        with_penalty = critic_loss(model, batch, loss_cfg(10.0))
        return with_penalty - critic_loss(model, batch, loss_cfg(0.0))

    grads = torch.autograd.grad(penalty(), params, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]
    generator = torch.Generator().manual_seed(1)
    direction = [torch.randn(p.shape, generator=generator, dtype=p.dtype) for p in params]
    by_autograd = sum(float((g * d).sum()) for g, d in zip(grads, direction, strict=True))
    h = 1e-6

    def moved(step: float) -> float:  # the penalty with the weights moved by step * direction
        with torch.no_grad():
            for p, d in zip(params, direction, strict=True):
                p.add_(step * d)
        value = penalty().item()  # with autograd on: the penalty needs the input gradient
        with torch.no_grad():
            for p, d in zip(params, direction, strict=True):
                p.sub_(step * d)
        return value

    by_differences = (moved(h) - moved(-h)) / (2 * h)
    assert abs(by_differences) > 1e-3, by_differences  # the penalty does depend on them
    assert by_autograd == pytest.approx(by_differences, rel=1e-4, abs=1e-6)


def test_the_losses_are_functions_of_the_model_and_the_batch_alone(model, batch, cfg):
    """No loss draws anything: called twice on one batch, each gives the same value
    and leaves torch's global generator where it was (a loss that drew z or eps
    there would give a resumed run, a micro-batch or a data-parallel shard other
    noise than the uninterrupted whole-batch run). And the batch's two halves,
    as gradient accumulation slices it, average to the whole batch's loss: every
    term is a mean over the batch's rows, each with its own z and eps."""
    for loss in (critic_loss, generator_loss):
        before = torch.get_rng_state()
        first = loss(model, batch, cfg.loss)
        assert torch.equal(loss(model, batch, cfg.loss), first), loss.__name__
        assert torch.equal(torch.get_rng_state(), before), loss.__name__
        halves = [loss(model, half, cfg.loss) for half in micro_batches(batch, 2)]
        assert ((halves[0] + halves[1]) / 2).item() == pytest.approx(first.item(), rel=1e-5)


def test_each_player_s_loss_has_the_paper_s_sign(model, batch, data_spec):
    """By hand, with D(x) = w . x + c (||w|| = 1: penalty 0) and every generated
    image f: the critic minimises D(f) - mean D(x) = w . f - mean w . x (it raises
    the real images' scores over the generated ones'), the generator minimises
    -D(f). Either sign flipped, or the generator's loss written as the critic's
    D(fake) - D(real) (log D's habit from the original GAN), gives other numbers."""
    f = torch.linspace(-0.5, 0.9, data_spec["num_pixels"])
    model.critic = Linear(data_spec["num_pixels"])
    model.generator = Constant(f, model.generator.noise_dim)
    w, c, x = model.critic.w.detach(), model.critic.c.item(), batch["inputs"]
    critic_value = critic_loss(model, batch, loss_cfg(10.0)).item()
    assert critic_value == pytest.approx(float(w @ f - (x @ w).mean()), abs=1e-5)
    generator_value = generator_loss(model, batch, loss_cfg(10.0)).item()
    assert generator_value == pytest.approx(-(float(w @ f) + c), abs=1e-5)


def test_the_critic_step_leaves_the_generator_alone_and_the_generator_s_reaches_it(
    model, batch, cfg
):
    """The critic's loss takes G(z) as data: after its backward no generator
    weight has a gradient (with G(z) not detached it would get one, pointing the
    generator the wrong way, and cost a backward through G every critic step).
    The generator's loss goes through the critic to G: every generator weight gets
    a finite, non-zero gradient (with G(z) detached there, none would)."""
    critic_loss(model, batch, cfg.loss).backward()
    assert all(p.grad is None for p in model.generator.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.critic.parameters())
    model.zero_grad(set_to_none=True)
    generator_loss(model, batch, cfg.loss).backward()
    for name, p in model.generator.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_the_critic_scores_each_example_on_its_own_in_training_mode(model, batch):
    """d D(x_i) / d x_j = 0 for j != i, in training mode: the mode the penalty is
    computed in, and the one where batch normalisation mixes the batch (the
    generic batch-independence test runs in eval mode, where it does not). The
    penalty's per-example gradient norms are only per example if this holds."""
    model.train()
    x = batch["inputs"].clone().requires_grad_(True)
    i = 3
    (grad,) = torch.autograd.grad(model.critic(x)[i], x)
    others = torch.cat([grad[:i], grad[i + 1 :]])
    assert torch.all(others == 0), "a critic score depends on other images of the batch"
    assert grad[i].abs().sum() > 0


@pytest.mark.parametrize(("ablation", "critic_steps"), [("none", 5), ("one_critic_step", 1)])
def test_every_player_step_draws_a_fresh_batch(
    quick_cfg, tmp_path, monkeypatch, ablation, critic_steps
):
    """Algorithm 1 samples a new minibatch of real images (and new z and eps) for
    each of its n_critic critic steps. Two iterations of the real loop: the players
    step in order (n_critic times the critic, then the generator), the critic's
    batches are all different images, and no two player steps share their noise z
    or their eps. A loop that draws one batch per iteration and reuses it for the
    inner steps fits the critic to 64 images (and one set of z and eps) at a time."""
    seen = []

    def recording(name):
        real = PLAYERS[name]

        def fn(model, batch, cfg):
            seen.append((name, {key: value.clone() for key, value in batch.items()}))
            return real(model, batch, cfg)

        return fn

    for name in list(PLAYERS):
        monkeypatch.setitem(PLAYERS, name, recording(name))
    monkeypatch.setattr(train_module, "summarise", lambda *args: {})  # not what is tested
    cfg = quick_cfg("trainer.max_steps=2", "trainer.eval_every=2", f"ablation={ablation}")
    train_module.train(cfg, tmp_path)
    assert [name for name, _ in seen] == (["critic"] * critic_steps + ["generator"]) * 2
    critic_batches = [batch["inputs"] for name, batch in seen if name == "critic"]
    for a in range(len(critic_batches)):
        for b in range(a):
            assert not torch.equal(critic_batches[a], critic_batches[b]), (a, b)
    for key in ("z", "eps"):
        drawn = [batch[key] for _, batch in seen]
        for a in range(len(drawn)):
            for b in range(a):
                assert not torch.equal(drawn[a], drawn[b]), (key, a, b)


def test_the_reference_experiment_is_algorithm_1():
    """The paper's hyper-parameters (Algorithm 1's defaults), as the reference run
    composes them: lambda = 10, n_critic = 5, Adam with alpha = 1e-4, beta_1 = 0,
    beta_2 = 0.9, no gradient clipping and no weight decay, a constant LR."""
    cfg = compose_config("experiment=reference")
    assert list(PLAYERS) == ["critic", "generator"]  # the order the loop steps them
    assert cfg.loss.penalty_weight == 10.0
    assert cfg.players.critic.steps == 5 and cfg.players.generator.steps == 1
    assert cfg.optim.name.name == "adam" and cfg.optim.lr == 1e-4
    assert list(cfg.optim.betas) == [0.0, 0.9]
    assert cfg.optim.grad_clip is None and cfg.optim.weight_decay == 0.0
    assert cfg.schedule.name.name == "constant" and cfg.schedule.warmup_steps == 0
    assert cfg.trainer.batch_size == 64


def test_the_wasserstein_estimate_and_gradient_norm_by_hand(model, splits, cfg, data_spec):
    """With D(x) = w . x + c (gradient norm 1 everywhere) and every sample the image
    f, the critic's estimate on a split is mean w . x - w . f (c cancels) and the
    gradient norm at the interpolates is exactly 1."""
    f = torch.linspace(-0.5, 0.9, data_spec["num_pixels"])
    model.critic = Linear(data_spec["num_pixels"])
    model.generator = Constant(f, model.generator.noise_dim)
    w, x = model.critic.w.detach(), splits["val"]["inputs"]
    metrics = split_metrics(model, splits["val"], cfg)
    assert metrics["wasserstein"] == pytest.approx(float((x @ w).mean() - w @ f), abs=1e-5)
    assert metrics["gradient_norm"] == pytest.approx(1.0, abs=1e-5)


def test_a_generator_of_training_images_scores_the_floor(model, splits, cfg):
    """A generator whose samples are the training images themselves is the floor's
    perfect sampler: its distance is frechet_floor exactly, and far below the
    independent-pixel baseline."""
    train = splits["train"]["inputs"]
    model.sample = lambda n, like, rng: train[:n]
    metrics = split_metrics(model, splits["val"], cfg)
    assert metrics["frechet"] == metrics["frechet_floor"]
    baseline = baselines(splits["val"], cfg)["independent_pixels"]["frechet"]
    assert metrics["frechet"] < baseline - 2


def test_split_metrics_repeat_exactly_and_leave_the_global_random_state_alone(model, splits, cfg):
    """Validation draws its samples, baseline and eps from its own seeded generators:
    two validations agree, and torch's global generator (which training does not
    draw from either: z and eps come with the batch) is where it was."""
    model.eval()
    before = torch.get_rng_state()
    first = split_metrics(model, splits["val"], cfg)
    assert split_metrics(model, splits["val"], cfg) == first
    assert baselines(splits["val"], cfg) == baselines(splits["val"], cfg)
    assert torch.equal(torch.get_rng_state(), before)
    assert all(math.isfinite(v) for v in first.values())
