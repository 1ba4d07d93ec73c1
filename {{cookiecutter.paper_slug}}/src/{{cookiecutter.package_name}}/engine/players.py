"""Players: the parts of a model that train with a loss and an optimiser of their own.

Most papers train one model with one loss and one optimiser: one player, the whole
model, which declares nothing. A GAN alternates a critic and a generator (each with
its own Adam and its own number of steps); actor-critic methods step an actor, a
critic and a temperature. Such a paper declares its players in loss.py,

    PLAYERS = {"critic": critic_loss, "generator": generator_loss}

in the order an iteration steps them, each loss ``fn(model, batch, cfg) -> scalar``
over the whole model. A player's parameters are those of the model's submodule of
the same name (``model.critic``), so every trainable parameter belongs to exactly
one player; ``players.<name>`` in the config (configs/players/) sets how many
steps it takes per iteration, each on a fresh batch, and overrides ``optim`` and
``schedule`` per key (``players.critic.optim.lr=3e-4``).

What the loop does for each player lives in train.py (train_step); this module
holds what it is built from: which parameters are whose, each player's settings,
and the two checks a two-player loop needs beyond a one-player one (gradients
averaged over processes by hand, and no step touching another player's weights).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import torch

from .optim import ConfigError


@dataclass
class Player:
    """One player as the loop steps it. ``name`` None: the single player of a paper
    that declares none (its log keys stay train/loss, train/grad_norm and lr)."""

    name: str | None
    params: list[torch.nn.Parameter]  # the only parameters its steps change
    param_names: tuple[str, ...]  # their names in the model (the weight average's)
    oc: SimpleNamespace  # its optim settings: the optim group with its overrides
    schedule_cfg: SimpleNamespace  # its schedule settings, likewise
    steps: int = 1  # updates per iteration (training step), each on a fresh batch
    optimizer: object = None
    schedule: object = None  # its update number (from 0) -> factor on oc.lr
    # The log window: losses summed on the device (read back at log time only).
    loss_sum: torch.Tensor | None = None
    steps_in_sum: int = 0
    grad_norm: torch.Tensor | None = None  # of its last update, before clipping
    lr: float = 0.0  # of its last update
    # Every other player's (name, parameter): its steps must leave them as they are.
    others: list[tuple[str, torch.nn.Parameter]] = field(default_factory=list)

    def key(self, what: str) -> str:
        """Its metrics.jsonl key: train/loss for the single player, train/critic/loss."""
        return f"train/{what}" if self.name is None else f"train/{self.name}/{what}"

    @property
    def lr_key(self) -> str:
        return "lr" if self.name is None else f"train/{self.name}/lr"


def parameters_by_player(model: torch.nn.Module, names) -> dict[str, list[tuple[str, object]]]:
    """Each player's (name, parameter) pairs: those of ``model.<player>``. Refuses,
    in one line, a player with no such submodule, a parameter two players share
    (each optimiser would step it) and a trainable one no player owns (none would)."""
    owner, by_player = {}, {}
    for player in names:
        part = getattr(model, player, None)
        if not isinstance(part, torch.nn.Module):
            raise ConfigError(
                f"loss.PLAYERS names {player!r}, but the model has no submodule "
                f"model.{player}: a player's parameters are those of the submodule of its name"
            )
        by_player[player] = []
        for name, param in part.named_parameters():
            if not param.requires_grad:
                continue
            if id(param) in owner:
                raise ConfigError(
                    f"{player}.{name} is also {owner[id(param)]}'s: a parameter two players "
                    "share is stepped by both optimisers; give each its own copy"
                )
            owner[id(param)] = player
            by_player[player].append((f"{player}.{name}", param))
    for name, param in model.named_parameters():
        if param.requires_grad and id(param) not in owner:
            raise ConfigError(
                f"model parameter {name} belongs to no player ({', '.join(names)}): move it "
                "into one of those submodules, or set requires_grad=False"
            )
    return by_player


def settings(optim_cfg, schedule_cfg, player_cfg: dict) -> tuple[SimpleNamespace, SimpleNamespace]:
    """A player's optim and schedule settings: the shared groups, with each key the
    player's config sets (not null) in place of the group's. A player that names
    another optimiser or schedule replaces the group's choice; its other keys are
    checked against that choice (engine/optim.py) when the optimiser is built."""

    def merged(shared: SimpleNamespace, own: dict | None) -> SimpleNamespace:
        changes = {k: v for k, v in (own or {}).items() if v is not None}
        return SimpleNamespace(**{**vars(shared), **changes})

    return (
        merged(optim_cfg, player_cfg.get("optim")),
        merged(schedule_cfg, player_cfg.get("schedule")),
    )


def average_gradients(params: list[torch.nn.Parameter], world_size: int) -> None:
    """Under torchrun, every process's gradients of ``params`` replaced by their mean
    (what DDP does for a one-player model): one all-reduce over a flat copy. A
    player's loss runs other players' parts too (the critic scores the generator's
    samples), so DDP's wrapper, which reduces every parameter the forward touched,
    is not used for players."""
    if world_size == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.flatten() for g in grads])
    torch.distributed.all_reduce(flat)
    flat /= world_size
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def fingerprint(pairs: list[tuple[str, torch.nn.Parameter]]) -> torch.Tensor | None:
    """One number per tensor (its norm: one fused op for all of them), enough to
    tell that a step wrote to it: an in-place op, a ``.data`` edit, a load."""
    if not pairs:
        return None
    return torch.stack(torch._foreach_norm([param.detach() for _, param in pairs]))


def refuse_changed_others(player: Player, before: torch.Tensor, step: int) -> None:
    """One line when ``player``'s step wrote to another player's weights (a loss
    that clips or edits them in place, an optimiser built over the whole model)."""
    after = fingerprint(player.others)
    if torch.equal(before, after):
        return
    changed = (before != after).nonzero()[0].item()
    raise ConfigError(
        f"step {step}: {player.name}'s step changed {player.others[changed][0]}, another "
        f"player's weight: a player's loss and optimiser may change only model.{player.name}"
    )


def broadcast_buffers(model: torch.nn.Module) -> None:
    """Process 0's buffers (batch-norm statistics) to every process, as DDP does
    before each forward pass for a one-player model: the ranks then agree."""
    for buffer in model.buffers():
        torch.distributed.broadcast(buffer, src=0)
