"""The loop's refusals: a recipe it cannot run, a NaN or inf on its way into the
weights, a resumed run whose config changed. Each stops the run with one line that
says where and what to try; train.py calls them, the tests plant their bugs.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from .ckpt import CheckpointError
from .optim import ConfigError

# Keys that may change when a run is resumed; any other change would make the
# continued run a different experiment, so resuming refuses it.
RESUMABLE_CHANGES = {
    "trainer.resume",
    "device",
    "trainer.detect_anomaly",
    "trainer.tensorboard",
    "trainer.num_threads",
    "trainer.stall_warning_seconds",
    "trainer.test_checkpoint",  # which checkpoint reports test: not how training runs
    # How many processes read the data: engine/loader.py's batches are the same for any.
    "trainer.eval_num_workers",
    "data.num_workers",
    "data.prefetch_factor",
}


NON_FINITE_HINT = (
    "training stopped, checkpoints keep the last finite weights. Try a lower optim.lr, "
    "check log/exp/division in the loss, or rerun with trainer.detect_anomaly=true"
)


class NonFiniteError(FloatingPointError):
    """The loss or a gradient became NaN or infinite; the message says where."""


def check_recipe(tc, world_size: int) -> None:
    """Refuse, in one line naming the key, a trainer recipe the loop cannot run."""
    if tc.grad_accum_steps < 1:
        raise ConfigError(f"trainer.grad_accum_steps={tc.grad_accum_steps}: use 1 or more")
    if tc.batch_size % world_size:
        raise ConfigError(
            f"trainer.batch_size={tc.batch_size} must be divisible by the number of "
            f"processes ({world_size}): each one takes an equal share of a batch"
        )
    if tc.batch_size % (world_size * tc.grad_accum_steps):
        raise ConfigError(
            f"trainer.batch_size={tc.batch_size} must be divisible by the number of "
            f"processes times trainer.grad_accum_steps ({world_size} x "
            f"{tc.grad_accum_steps}): every micro-batch is an equal share"
        )
    if tc.ema_decay is not None and not 0.0 < tc.ema_decay < 1.0:
        raise ConfigError(f"trainer.ema_decay={tc.ema_decay} must be between 0 and 1 (e.g. 0.999)")


def describe_non_finite(step: int, loss: torch.Tensor, model, player: str | None = None) -> str:
    """One line: where the first NaN/inf is, and what to try. ``model``: a module,
    or one player's (name, parameter) pairs (engine/players.py), named in the line."""
    pairs = model.named_parameters() if isinstance(model, torch.nn.Module) else model
    whose = "" if player is None else f"{player}'s step: "
    where = f"{whose}the loss is {loss.item()}"
    if math.isfinite(loss.item()):
        for name, param in pairs:
            if param.grad is not None and not torch.isfinite(param.grad).all():
                where = f"{whose}the gradient of {name} is not finite (loss {loss.item():.4g})"
                break
    return f"step {step}: {where}; {NON_FINITE_HINT}"


def refuse_non_finite_weights(model: torch.nn.Module, step: int) -> None:
    # Needed when checks every few steps (trainer.check_finite_every) let a bad step through.
    for name, param in model.named_parameters():
        if not torch.isfinite(param).all():
            raise NonFiniteError(
                f"step {step}: weight {name} is not finite; not writing a checkpoint "
                "(set trainer.check_finite_every=1 to stop at the step that caused it)"
            )


def refuse_changed_config(saved: dict, current: dict, path: Path) -> None:
    """Resuming with a different config would silently mix two experiments."""
    old, new = _flatten(saved), _flatten(current)
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    # What the checks ask (checks.*) is not how the run trains.
    changed = [k for k in changed if k not in RESUMABLE_CHANGES and not k.startswith("checks.")]
    if changed:
        key = changed[0]
        raise CheckpointError(
            f"cannot resume from {path}: {key} was {old.get(key)!r}, now {new.get(key)!r} "
            f"({len(changed)} key(s) differ); resume with the run's own config or start a "
            "new run directory"
        )


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
