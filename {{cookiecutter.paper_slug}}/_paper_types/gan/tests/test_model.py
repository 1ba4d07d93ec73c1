"""Model (phase 2): output shapes and ranges, the parameter count the config
implies, and the two players' parameters."""

from __future__ import annotations

import torch

from {{ cookiecutter.package_name }}.loss import (
    PLAYERS,
)
from {{ cookiecutter.package_name }}.model import (
    build_model,
)


def test_output_shapes_and_ranges(model, batch, data_spec):
    x = batch["inputs"]
    assert model(x).shape == (len(x),)  # one critic score per image
    z = batch["z"]  # the noise comes with the batch (data.py)
    assert z.shape == (len(x), model.noise_dim) and model.noise_dim == data_spec["noise_dim"]
    images = model.generator(z)
    assert images.shape == x.shape
    assert images.abs().max() < 1  # tanh: the real images' range, [-1, 1]
    samples = model.sample(5, x, torch.Generator().manual_seed(0))
    assert samples.shape == (5, data_spec["num_pixels"])
    # Untrained, any output is small: scaled up, the images must still stay in range.
    with torch.no_grad():
        for p in model.generator.parameters():
            p.mul_(10)
    assert model.generator(z).abs().max() <= 1


def linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def mlp_count(sizes: list[int]) -> int:
    return sum(linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def test_parameter_count_matches_the_formula(cfg, data_spec):
    # Written independently of model.py: two MLPs, 64 pixels, one score.
    for noise_dim, g_hidden, d_hidden in (
        (4, [16], [16]),
        (32, [256, 256], [256, 256]),
        (8, [8, 32], [64]),
    ):
        m = cfg.model.copy()
        m.generator_hidden, m.critic_hidden = g_hidden, d_hidden
        model = build_model(m, {**data_spec, "noise_dim": noise_dim})  # a data setting
        generator = mlp_count([noise_dim, *g_hidden, 64])
        critic = mlp_count([64, *d_hidden, 1]) - 1  # no bias on the score
        assert sum(p.numel() for p in model.generator.parameters()) == generator
        assert sum(p.numel() for p in model.critic.parameters()) == critic
        assert sum(p.numel() for p in model.parameters()) == generator + critic


def test_every_parameter_belongs_to_exactly_one_player(model):
    # The loop steps model.<player>'s parameters with that player's optimiser: a
    # parameter outside every player would never train, one shared by two would be
    # stepped by both.
    owned = [id(p) for name in PLAYERS for p in getattr(model, name).parameters()]
    assert len(owned) == len(set(owned))
    assert set(owned) == {id(p) for p in model.parameters()}
