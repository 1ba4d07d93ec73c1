"""Model (phase 2): output shapes and the parameter count the config implies."""

from __future__ import annotations

from {{ cookiecutter.package_name }}.model import (
    build_model,
)


def test_output_shapes(model, batch, data_spec):
    q = model(batch["inputs"])
    assert q.shape == (len(batch["inputs"]), data_spec["num_actions"])


def mlp_parameters(sizes: list[int]) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def test_parameter_count_matches_the_formula(cfg, data_spec):
    obs, actions = data_spec["obs_dim"], data_spec["num_actions"]
    for hidden in ([16], [128, 128]):
        m = cfg.model.copy()
        m.hidden = hidden
        model = build_model(m, data_spec)
        expected = mlp_parameters([obs, *hidden, actions])
        assert sum(p.numel() for p in model.parameters()) == expected
