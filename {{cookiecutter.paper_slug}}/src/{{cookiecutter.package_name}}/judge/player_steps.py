"""The players as the checks train them: each player's parameters, loss and
optimiser, and one training iteration on a batch, as train.py takes it.

A paper with one player (no loss.PLAYERS) has one, the whole model, whose loss is
``loss_fn`` on its outputs; with PLAYERS, each player trains the submodule of its
name (engine/players.py). judge/diagnostics.py (gradient flow, gradcheck, loss at
init, init statistics, overfit, LR range) and judge/data_checks.py (the input
baseline's short runs) go through these, so every check follows the players.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from omegaconf import OmegaConf
from torch import nn

from .. import loss as paper_loss
from ..engine.optim import build_optimizer
from ..engine.players import parameters_by_player, settings
from ..engine.runtime import plain


class PlayerLoss(NamedTuple):
    """One player as the checks see it: its name (None: the single player), its
    (name, parameter) pairs and its loss ``loss(model, batch, loss_cfg)``."""

    name: str | None
    named: list[tuple[str, nn.Parameter]]
    loss: Callable


def players_of(model: nn.Module, loss_fn: Callable | None = None) -> list[PlayerLoss]:
    """The players the loop trains, in order: the whole model with ``loss_fn`` (by
    default loss.loss_fn) on its outputs, unless loss.py declares PLAYERS."""
    declared_players = getattr(paper_loss, "PLAYERS", None)
    if declared_players is None:
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        loss_fn = loss_fn or paper_loss.loss_fn

        def single_loss(model, batch, loss_cfg) -> torch.Tensor:
            return loss_fn(model(batch["inputs"]), batch, loss_cfg)

        return [PlayerLoss(None, named, single_loss)]
    owned = parameters_by_player(model, list(declared_players))
    return [PlayerLoss(name, owned[name], fn) for name, fn in declared_players.items()]


class Trainable(NamedTuple):
    player: PlayerLoss
    optimizer: object  # as train.py builds it: the optim group with the player's keys
    steps: int  # per iteration
    grad_clip: float | None


def optimisers(model: nn.Module, cfg, players: Callable = players_of) -> list[Trainable]:
    """Per player (``players(model)``): itself, its optimiser, steps per iteration
    and clipping norm."""
    own = OmegaConf.to_container(cfg.players, resolve=True, enum_to_str=True)
    found = []
    for player in players(model):
        mine = own.get(player.name, {}) if player.name else {}
        optim, _ = settings(plain(cfg.optim), plain(cfg.schedule), mine)
        params = [p for _, p in player.named]
        found.append(
            Trainable(player, build_optimizer(params, optim), mine.get("steps", 1), optim.grad_clip)
        )
    return found


def step_players(model, players, batch, loss_cfg, lr: float | None = None, clip=False) -> float:
    """One training iteration on ``batch``: each player's steps, as the loop takes
    them (at ``lr`` when given; with ``clip``, gradients clipped as configured);
    returns the summed losses."""
    total = 0.0
    for player, optimizer, steps, grad_clip in players:
        for _ in range(steps):
            if lr is not None:
                for group in optimizer.param_groups:
                    group["lr"] = lr
            loss = player.loss(model, batch, loss_cfg)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip and grad_clip is not None:  # null: no clipping, as in the loop
                torch.nn.utils.clip_grad_norm_([p for _, p in player.named], grad_clip)
            optimizer.step()
            total += loss.item()
    return total
