"""Guards that stop a run early and say why: NaN/inf, bad config, non-determinism."""

from __future__ import annotations

import json

import pytest
import torch
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

import {{ cookiecutter.package_name }}.train as train_module
from {{ cookiecutter.package_name }}.configs.schema import (
    compose_config,
)
from {{ cookiecutter.package_name }}.engine.ckpt import (
    load_checkpoint,
)
from {{ cookiecutter.package_name }}.engine.optim import (
    ConfigError,
)
from {{ cookiecutter.package_name }}.engine.runtime import (
    make_deterministic,
)


def poison_loss_at(monkeypatch, calls: list, step: int, how, player=None) -> None:
    """Let the first loss ``player`` computes in training step ``step`` go through
    ``how(loss, player)`` (e.g. times NaN). ``calls``: conftest.loss_calls(cfg), whose
    loss each computation of a step is (micro-batches and players' steps)."""
    real, made = train_module.player_loss, []
    call = (step - 1) * len(calls) + calls.index(player) + 1

    def player_loss(run, who, batch):
        made.append(1)
        loss = real(run, who, batch)
        return how(loss, who) if len(made) == call else loss

    monkeypatch.setattr(train_module, "player_loss", player_loss)


def whose(player) -> str:
    """How the guard's line names the player whose step went wrong."""
    return "" if player is None else f"{player}'s step: "


def test_a_nan_loss_stops_training_at_that_step(quick_cfg, tmp_path, monkeypatch, loss_calls):
    cfg = quick_cfg()
    for player in dict.fromkeys(loss_calls(cfg)):  # every player's loss (one: None)
        with monkeypatch.context() as patch:
            poison_loss_at(patch, loss_calls(cfg), 7, lambda loss, who: loss * float("nan"), player)
            with pytest.raises(train_module.NonFiniteError) as error:
                train_module.train(cfg, tmp_path / str(player))
        assert f"step 7: {whose(player)}the loss is nan" in str(error.value)
        # The last checkpoint (step 4) holds finite weights, written before the NaN.
        state = load_checkpoint(tmp_path / str(player) / "checkpoints" / "last.pt")
        assert state["step"] == 4
        assert all(torch.isfinite(w).all() for w in state["model"].values())


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_a_non_finite_gradient_names_the_parameter(
    quick_cfg, tmp_path, monkeypatch, loss_calls, bad
):
    # The last parameter of the player whose step it is (every player in turn) gets
    # a bad gradient. A NaN norm fed to the clipping first would turn every gradient
    # NaN and blame the first parameter instead.
    cfg = quick_cfg()
    for player in dict.fromkeys(loss_calls(cfg)):
        poisoned = []

        def blow_up_one_gradient(loss, who, poisoned=poisoned):
            # The loss stays finite; one parameter's gradient turns bad on the way back.
            poisoned.append(who.param_names[-1])
            who.params[-1].register_hook(lambda grad: grad * bad)
            return loss

        with monkeypatch.context() as patch:
            poison_loss_at(patch, loss_calls(cfg), 3, blow_up_one_gradient, player)
            with pytest.raises(train_module.NonFiniteError) as error:
                train_module.train(cfg, tmp_path / str(player))
        expected = f"step 3: {whose(player)}the gradient of {poisoned[0]} is not finite"
        assert expected in str(error.value)


def test_the_command_line_reports_divergence_in_one_line(tmp_path, run_train_command):
    # An absurd LR and no clipping: the weights overflow within a few steps (every
    # player's: a player may set its own LR or clipping).
    absurd = ["optim.lr=1e30", "schedule.warmup_steps=0", "optim.grad_clip=1e30"]
    for player in train_module.PLAYERS or ():
        absurd += [f"++players.{player}.optim.lr=1e30", f"++players.{player}.optim.grad_clip=1e30"]
    with pytest.raises(SystemExit) as stopped:
        run_train_command(
            "experiment=tiny", *absurd, "trainer.max_steps=50", "trainer.eval_every=1000",
            "trainer.tensorboard=false", f"hydra.run.dir={tmp_path}",
        )  # fmt: skip
    # SystemExit with a message: Python prints it as the last line and exits with 1.
    message = str(stopped.value.code)
    assert message.startswith("error: step ") and "\n" not in message, message
    assert json.loads((tmp_path / "diverged.json").read_text())["error"] in message


@pytest.mark.filterwarnings("ignore:Error detected in")
def test_anomaly_mode_names_the_operation(quick_cfg, tmp_path, monkeypatch, loss_calls):
    # sqrt(-1) = NaN in the forward pass; anomaly mode reports the backward of it.
    cfg = quick_cfg("trainer.detect_anomaly=true")
    calls = loss_calls(cfg)
    poison_loss_at(
        monkeypatch, calls, 2, lambda loss, who: loss + (loss - loss - 1).sqrt(), calls[0]
    )
    with pytest.raises(RuntimeError, match="SqrtBackward0"):
        train_module.train(cfg, tmp_path)


@pytest.mark.parametrize(
    "override",
    ["trainer.max_step=10", "trainer.max_steps=abc", "trainer.precision=fp16", "optim.lr=fast"],
)
def test_a_misspelt_key_or_wrong_type_fails_when_the_config_is_composed(override):
    with pytest.raises(ConfigCompositionException):
        compose_config(override)


def test_the_tests_quick_configs_are_what_hydra_composes(quick_cfg):
    # quick_cfg sets value overrides on a copy rather than composing anew (conftest):
    # the result must be Hydra's, types included (json tells 5 from 5.0). A group
    # choice, here the default ablation, makes it compose.
    values = ("seed=3", "trainer.max_steps=5", "trainer.ema_decay=0.9", "optim.lr=1e-2",
              "trainer.resume=true", "optim.grad_clip=null")  # fmt: skip
    copied = OmegaConf.to_container(quick_cfg(*values), resolve=True, enum_to_str=True)
    composed = OmegaConf.to_container(
        quick_cfg(*values, "ablation=none"), resolve=True, enum_to_str=True
    )
    assert json.dumps(copied, sort_keys=True) == json.dumps(composed, sort_keys=True)
    with pytest.raises(ConfigCompositionException):
        quick_cfg("trainer.max_steps=abc")  # as the command line would fail


def test_a_config_the_code_cannot_run_fails_in_one_line(tmp_path, run_train_command):
    # Valid types, but not runnable as asked: one line that names the key, no traceback.
    with pytest.raises(SystemExit) as stopped:
        run_train_command(
            "experiment=tiny", f"hydra.run.dir={tmp_path}", "optim=sgd", "optim.betas=[0.9,0.99]"
        )
    message = str(stopped.value.code)
    # (players.<name>.optim.betas= when a player takes its optimiser from the group)
    assert message.startswith("error: ") and "optim.betas=" in message, message
    assert "\n" not in message, message


@pytest.mark.parametrize(
    "recipe", ["accumulation that does not divide", "accumulation 0", "ema 1.5"]
)
def test_the_loop_refuses_a_recipe_it_cannot_run(quick_cfg, tmp_path, recipe):
    # The error names the key (the command line prints it as the line above does).
    batch_size = quick_cfg().trainer.batch_size
    override = {
        "accumulation that does not divide": f"trainer.grad_accum_steps={batch_size + 1}",
        "accumulation 0": "trainer.grad_accum_steps=0",
        "ema 1.5": "trainer.ema_decay=1.5",
    }[recipe]
    with pytest.raises(ConfigError, match=override.split("=")[0]):
        train_module.train(quick_cfg(override), tmp_path)


def test_same_seed_same_losses_bit_for_bit(quick_cfg, quick_run, tmp_path):
    # On the CPU a fixed seed is enough; trainer.deterministic is for GPU kernels.
    # The shared run was trained whenever a test first asked for it, with the random
    # generators in whatever state the tests before had left: the seed alone decides.
    first = (quick_run / "metrics.jsonl").read_text()
    train_module.train(quick_cfg(), tmp_path / "again")
    assert (tmp_path / "again" / "metrics.jsonl").read_text() == first
    other_seed = quick_cfg().seed + 1
    train_module.train(quick_cfg(f"seed={other_seed}"), tmp_path / "other")
    assert (tmp_path / "other" / "metrics.jsonl").read_text() != first  # the seed matters


@pytest.mark.slow  # switching deterministic algorithms on imports torch's compiler (~1 s)
def test_deterministic_switch_sets_and_clears_the_torch_flags():
    try:
        make_deterministic(True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    finally:
        make_deterministic(False)
    assert not torch.are_deterministic_algorithms_enabled()
