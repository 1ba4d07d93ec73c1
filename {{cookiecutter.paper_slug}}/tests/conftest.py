"""Shared fixtures: the composed config, the data, a fresh model, a small batch.

Every test builds on the same entry points the training script uses (data.spec,
data.build_splits, data.train_batches, model.build_model, loss.loss_fn), so a test
that passes here checks the code that actually trains.
"""

from __future__ import annotations

import copy
import functools
import logging
import sys

import pytest
import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType
from omegaconf import OmegaConf, ValidationError
from torch import nn

import {{ cookiecutter.package_name }}.train as train_module
from {{ cookiecutter.package_name }}.configs.schema import (
    compose_config,
)
from {{ cookiecutter.package_name }}.data import (
    build_splits,
    spec,
    train_batches,
)
from {{ cookiecutter.package_name }}.engine.batches import (
    named_tensors,
)
from {{ cookiecutter.package_name }}.judge.diagnostics import (
    not_applicable,
)
from {{ cookiecutter.package_name }}.model import (
    build_model,
)

# The scale every test runs at: the recipe your config selects (optimiser, schedule,
# players, loss), with the sizes of configs/experiment/tiny.yaml (a small model, small
# splits). The checks test the method, not its size: when the default grows to the
# paper's model, the suite stays as fast as it is, so keep tiny.yaml small.
TEST_SCALE = ("experiment=tiny",)

# A short run at that scale that every paper type finishes in about a second: the
# tests of the training loop use it.
QUICK_RUN = (
    *TEST_SCALE,
    "trainer.max_steps=12",
    "trainer.eval_every=4",
    "trainer.log_every=2",
    "trainer.tensorboard=false",
    "trainer.plot=false",  # matplotlib would take most of a run this short
)


@pytest.fixture(scope="session")
def cfg():
    """The composed config at test scale (TEST_SCALE)."""
    return compose_config(*TEST_SCALE)


@pytest.fixture(scope="session")
def data_spec(cfg):
    return spec(cfg.data)


@pytest.fixture(scope="session")
def splits(cfg):
    return build_splits(cfg.data)


@pytest.fixture
def model(cfg, data_spec):
    torch.manual_seed(0)
    return build_model(cfg.model, data_spec)


@pytest.fixture
def draw_batch(cfg, splits, model):
    """``draw_batch(size)``: one batch exactly as the training loop draws it
    (augmented, if the paper type augments; collected with ``model``, if the data
    depends on the model)."""

    def draw(size: int, seed: int = 0) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(seed)
        return next(train_batches(cfg.data, splits["train"], size, generator, model))

    return draw


@pytest.fixture
def batch(draw_batch):
    """A training batch of 16 examples."""
    return draw_batch(16)


@pytest.fixture
def forward_with_input_grad():
    """Run a model and also return the differentiable views of its inputs, by name.

    Float inputs (images, observations, a noised x_t) are those views themselves;
    of a dict of inputs, every float tensor is one ({"inputs.x_t": ...}), the integer
    ones (a time step, a label) are left alone: they have no gradient. Inputs with
    no float tensor at all (token ids) use the output of the model's first
    nn.Embedding instead ({"<its name> output": ...}).
    """

    def run(model: nn.Module, inputs):
        named = named_tensors(inputs, "inputs")  # {"inputs": x} or {"inputs.x_t": x_t, ...}
        floats = {name: t for name, t in named.items() if t.is_floating_point()}
        if floats:
            views = {name: t.clone().requires_grad_(True) for name, t in floats.items()}
            if isinstance(inputs, torch.Tensor):
                return model(views["inputs"]), views
            with_views = {k: views.get(f"inputs.{k}", v) for k, v in inputs.items()}
            return model(with_views), views
        captured = {}

        def keep_output(module, args, output):
            output.retain_grad()
            captured["x"] = output

        name, embedding = next(
            (n, m) for n, m in model.named_modules() if isinstance(m, nn.Embedding)
        )
        handle = embedding.register_forward_hook(keep_output)
        try:
            outputs = model(inputs)
        finally:
            handle.remove()
        return outputs, {f"{name} output": captured["x"]}

    return run


@pytest.fixture(scope="session")
def skip_if_not_applicable():
    """``skip_if_not_applicable(check)``: skip the test, giving the method's reason,
    when loss.py declares that generic check not applicable (NOT_APPLICABLE; the
    names are judge/diagnostics.py's CHECKS). Nothing else skips a generic test."""

    def skip(check: str) -> None:
        reason = not_applicable(check)
        if reason is not None:
            pytest.skip(f"n/a: {reason}")

    return skip


@pytest.fixture(scope="session")
def loss_calls():
    """``loss_calls(cfg)``: whose loss each loss computation of one training step
    is, in order: [None] * trainer.grad_accum_steps for a paper with one player;
    with loss.PLAYERS, each player's name once per micro-batch of each of its steps.
    The guard and resume tests count calls of train.player_loss with it."""

    def calls(cfg) -> list[str | None]:
        accumulation = cfg.trainer.grad_accum_steps
        return [
            name
            for name, own, _ in train_module.player_settings(cfg)
            for _ in range(own.get("steps", 1) * accumulation)
        ]

    return calls


@pytest.fixture(scope="session")
def quick_cfg():
    """``quick_cfg(*overrides)``: the config of a short run that trains in seconds.

    A Hydra composition takes 0.1-0.2 s, as long as the short run itself, and most
    tests change only values (``trainer.resume=true``). Those are set on a copy of
    the short run's config, composed once: what Hydra does with a value override
    after composing (the value parsed as on the command line, checked against the
    schema). A group choice (``optim=sgd``) or anything else composes anew. Every
    call returns its own copy to change freely.
    """
    composed = {(): quick_run_config()}
    parser = OverridesParser.create()

    def compose(*overrides: str):
        changes = parser.parse_overrides(list(overrides))
        if all(_sets_a_value(composed[()], change) for change in changes):
            cfg = copy.deepcopy(composed[()])
            try:
                for change in changes:
                    OmegaConf.update(cfg, change.key_or_group, change.value(), merge=False)
                return cfg
            except ValidationError:
                pass  # a wrong type: let Hydra compose it and raise its own error
        if overrides not in composed:
            composed[overrides] = compose_config(*QUICK_RUN, *overrides)
        return copy.deepcopy(composed[overrides])

    return compose


@functools.cache
def quick_run_config():
    """The short run's config, composed once per session (also what names the recipe
    replay in tests/test_loop.py). Callers copy it before changing it."""
    return compose_config(*QUICK_RUN)


def _sets_a_value(cfg, override) -> bool:
    """Whether ``override`` is a plain ``key=value`` for a value ``cfg`` already has
    (not a config group, a ``+``/``~`` edit, a package or a sweep)."""
    if override.type != OverrideType.CHANGE or override.package or override.is_sweep_override():
        return False
    value = OmegaConf.select(cfg, override.key_or_group, default=_ABSENT)
    return value is not _ABSENT and not OmegaConf.is_config(value)


_ABSENT = object()  # OmegaConf.select's answer for a key the config does not have


@pytest.fixture(scope="session")
def quick_run(quick_cfg, tmp_path_factory):
    """The directory of one finished ``quick_cfg()`` run, shared by the tests that
    only read it. Copy it (shutil.copytree) before running anything in it."""
    run_dir = tmp_path_factory.mktemp("quick_run")
    train_module.train(quick_cfg(), run_dir)
    return run_dir


@pytest.fixture(scope="session")
def run_train_command():
    """``run_train_command(*args)``: ``python -m <package>.train <args>`` in this
    process, i.e. train.main() (Hydra's @hydra.main) with the arguments in sys.argv.

    The same composition, run directory, sweeps and error handling (a failed run
    raises SystemExit with its one-line message) without a second Python and torch
    import (~2 s each). What needs a process of its own (a kill, torchrun, a
    launcher that spawns jobs) runs the real command instead.
    """

    def run(*args: str) -> None:
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        try:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(sys, "argv", ["train", *args])
                train_module.main()
        finally:  # Hydra set up logging for the run (a file in its directory): undo it
            for handler in root.handlers[:]:
                if handler not in handlers:
                    root.removeHandler(handler)
                    handler.close()
            root.setLevel(level)

    return run
