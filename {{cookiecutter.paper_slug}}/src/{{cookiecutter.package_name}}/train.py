"""Training: one plain PyTorch loop, configured by Hydra.

    python -m {{ cookiecutter.package_name }}.train
    python -m {{ cookiecutter.package_name }}.train experiment=reference
    python -m {{ cookiecutter.package_name }}.train optim.lr=1e-3 trainer.max_steps=500
    python -m {{ cookiecutter.package_name }}.train hydra.run.dir=runs/long trainer.resume=true
    torchrun --standalone --nproc_per_node=2 -m {{ cookiecutter.package_name }}.train

The first uses configs/train.yaml as it is; the second adds the run behind the
reference number in PAPER.md; the third overrides single values; the fourth
continues a stopped run from its last checkpoint (or starts it); the fifth trains
data-parallel on two processes (GPUs, or CPU cores over gloo).

Each run writes to its own directory (printed at the start):
    metrics.jsonl         one JSON object per logged step (train and val)
    metrics.json          final validation metrics (+ the paper type's summary)
    training_curves.png   train loss and validation metric against steps (from 2 logs)
    checkpoints/last.pt   everything needed to continue exactly where it stopped
    checkpoints/best.pt   the same, at the best validation headline metric so far
    .hydra/               the composed config and the overrides used

``train(cfg, run_dir)`` does the work and can be called without Hydra (the tests do).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from . import loss as paper_loss
from .configs import schema
from .data import build_splits, spec, train_batches
from .engine.batches import micro_batches, num_examples, on_device
from .engine.ckpt import CheckpointError, load_checkpoint, save_checkpoint
from .engine.guards import (
    NON_FINITE_HINT,
    NonFiniteError,
    check_recipe,
    describe_non_finite,
    refuse_changed_config,
    refuse_non_finite_weights,
)
from .engine.optim import (
    ConfigError,
    WeightAverage,
    build_optimizer,
    build_schedule,
    check_keys,
    set_lr,
)
from .engine.players import (
    Player,
    average_gradients,
    broadcast_buffers,
    fingerprint,
    parameters_by_player,
    refuse_changed_others,
    settings,
)
from .engine.run_log import (
    MetricsLog,
    StallWatch,
    format_metrics,
    prefixed,
    quiet_unless_rank_zero,
    read_jsonl,
    reported_checkpoint,
)
from .engine.runtime import (
    Distributed,
    init_distributed,
    leave_distributed,
    make_deterministic,
    pick_device,
    pick_num_threads,
    plain,
    ranks_agree,
    rng_states,
    seed_everything,
    set_rng_states,
    shard,
)
from .eval import evaluate
from .loss import HEADLINE_METRIC, HEADLINE_MODE, summarise
from .model import build_model

# The paper's losses: one loss_fn (one player, the whole model), or the players
# loss.py declares, each stepping its own part of the model (engine/players.py).
loss_fn = getattr(paper_loss, "loss_fn", None)
PLAYERS = getattr(paper_loss, "PLAYERS", None)

log = logging.getLogger(__name__)
schema.register()  # before @hydra.main composes the config


@dataclass
class Run:
    """What a training run holds: the parts built from the config, and the running
    state a checkpoint saves (``step`` onwards) so that a resumed run goes on exactly."""

    run_dir: Path
    # Plain objects for what the loop reads every step (engine/runtime.py: plain says why).
    tc: SimpleNamespace  # trainer
    loss_cfg: SimpleNamespace
    ddp: Distributed
    device: torch.device
    generator: (
        torch.Generator
    )  # the data order's random stream (engine/runtime.py: seed_everything)
    splits: dict
    model: torch.nn.Module  # plain: evaluation and checkpoints use it
    step_model: torch.nn.Module  # the same weights, wrapped for DDP and/or compiled
    # Each with its parameters, optimiser (torch.optim's or engine/optim.py's AdamW),
    # schedule and log window: one, the whole model, unless loss.py declares PLAYERS.
    players: list[Player]
    batches: Iterator[dict]
    config: dict  # the resolved config, stored in every checkpoint
    # An exponential moving average of the weights (trainer.ema_decay); when on,
    # validation, best.pt and eval.py use it instead of the trained weights.
    ema: WeightAverage | None = None
    step: int = 0
    best: float | None = None  # best validation headline so far (best.pt holds it)
    val: dict = field(default_factory=dict)  # the latest validation metrics
    # Mean training loss over the last log window, per player: {"train/loss": ...}.
    train_losses: dict = field(default_factory=dict)
    autocast: Callable = contextlib.nullcontext  # bf16: torch.autocast; off: no cost
    data_seconds: float = 0.0  # time spent waiting for batches (metrics.json)
    stall_watch: StallWatch | None = None

    @property
    def evaluated_model(self) -> torch.nn.Module:
        """The weights validation and checkpoint choice look at."""
        return self.model if self.ema is None else self.ema.model


def train(cfg: DictConfig, run_dir: str | Path) -> float:
    """Train as ``cfg`` says, write outputs to ``run_dir``; return the headline val metric."""
    run_dir = Path(run_dir)
    done = finished_headline(run_dir, cfg.trainer.max_steps) if cfg.trainer.resume else None
    if done is not None:
        return done  # nothing left to do (a finished sweep job)

    run = start_run(cfg, run_dir)
    tc = run.tc
    check_every = tc.check_finite_every or (1 if run.device.type == "cpu" else tc.log_every)
    metrics_log = None
    if run.ddp.is_main:
        metrics_log = MetricsLog(run_dir, run.step or None, tc.tensorboard)
        if run.step == 0:
            run.val = evaluate(
                run.evaluated_model, run.splits["val"], tc.eval_batch_size, run.config
            )
            metrics_log.write({"step": 0, **prefixed("val", run.val)})
            log.info("step 0 (init) | val %s", format_metrics(run.val))

    start, eval_seconds = time.perf_counter(), 0.0
    run.step_model.train()  # evaluate() puts the model back in the mode it found
    progress = tqdm(
        range(run.step + 1, tc.max_steps + 1),
        initial=run.step,
        total=tc.max_steps,
        disable=None if run.ddp.is_main else True,
        dynamic_ncols=True,
    )
    anomaly = torch.autograd.set_detect_anomaly(True) if tc.detect_anomaly else None
    try:
        with anomaly or contextlib.nullcontext():
            for step in progress:
                run.step = step
                train_players(run, step, check=step % check_every == 0)
                if step % tc.log_every == 0 or step == tc.max_steps:
                    log_training(run, metrics_log)
                    progress.set_postfix(
                        {k.removeprefix("train/"): f"{v:.4f}" for k, v in run.train_losses.items()}
                    )
                if run.ddp.is_main and (step % tc.eval_every == 0 or step == tc.max_steps):
                    eval_start = time.perf_counter()
                    evaluate_and_checkpoint(run, metrics_log, tc.eval_batch_size)
                    eval_seconds += time.perf_counter() - eval_start
    finally:
        progress.close()
        if metrics_log is not None:
            metrics_log.close()
        if run.stall_watch is not None:
            run.stall_watch.stop()
    return finish_run(run, time.perf_counter() - start, eval_seconds)


def train_players(run: Run, step: int, check: bool) -> None:
    """Training step ``step`` (from 1): each player in turn takes its steps, each on
    a fresh batch (one update of the whole model, unless loss.py declares PLAYERS).
    At the first step and every log_every steps, a player's steps must leave every
    other player's weights as they were (a loss that edits them writes them every
    step, so the first step finds it; between, the check would cost a tiny model
    a tenth of its speed)."""
    guard = PLAYERS is not None and (step == 1 or step % run.tc.log_every == 0)
    for player in run.players:
        before = fingerprint(player.others) if guard else None
        for k in range(player.steps):
            batch = next_batch(run, step)
            # The schedule counts this player's updates from 0.
            player.lr = player.oc.lr * player.schedule((step - 1) * player.steps + k)
            loss, player.grad_norm = train_step(run, player, batch, player.lr, check)
            player.loss_sum += loss
            player.steps_in_sum += 1
        if guard:
            refuse_changed_others(player, before, step)
    if run.ddp.world_size > 1 and PLAYERS is not None:
        broadcast_buffers(run.model)  # what DDP does for one player (batch-norm statistics)


def player_loss(run: Run, player: Player, batch: dict) -> torch.Tensor:
    """The loss ``player`` minimises on ``batch``."""
    if player.name is None:
        return loss_fn(run.step_model(batch["inputs"]), batch, run.loss_cfg)
    try:
        return PLAYERS[player.name](run.step_model, batch, run.loss_cfg)
    except (RuntimeError, FloatingPointError):
        # Another player's step may have left non-finite weights that this loss
        # trips over first (sampling from a policy of NaNs): that is divergence.
        refuse_non_finite_weights(run.model, run.step)
        raise


def train_step(run: Run, player: Player, batch: dict, lr: float, check: bool = True):
    """One update of ``player``'s parameters on one batch: forward, loss and backward
    (over trainer.grad_accum_steps micro-batches), clip the gradient (after checking
    that it is finite), set the LR, step, update the weight average. Returns the
    loss (detached) and the gradient norm before clipping (what the log shows)."""
    player.optimizer.zero_grad(set_to_none=True)
    parts = micro_batches(batch, run.tc.grad_accum_steps)
    if len(parts) == 1:
        with run.autocast():
            loss = player_loss(run, player, batch)
        loss.backward()
        loss = loss.detach()
    else:
        loss = accumulate_gradients(run, player, parts, num_examples(batch))
    if player.name is not None:  # DDP averages the single player's
        average_gradients(player.params, run.ddp.world_size)
    params = [p for p in player.params if p.grad is not None]
    grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params])  # kept for the log
    # A NaN or inf anywhere in the loss or the gradients makes the norm non-finite:
    # stop before the optimiser writes it into the weights (on a GPU only every
    # check_every steps: each check waits for it). .item() and math: ~0.2 us, where
    # torch.isfinite is an op (~5 us). Checked before clipping, which would scale
    # every gradient by NaN and hide which parameter's went bad.
    if check and not math.isfinite(grad_norm.item()):
        named = zip(player.param_names, player.params, strict=True)
        raise NonFiniteError(describe_non_finite(run.step, loss, list(named), player.name))
    if player.oc.grad_clip is not None:
        # Clipping (what clip_grad_norm_ does, with the norm above) bounds one bad
        # batch's damage.
        torch.nn.utils.clip_grads_with_norm_(params, player.oc.grad_clip, grad_norm)
    set_lr(player.optimizer, lr)
    player.optimizer.step()
    if run.ema is not None:
        run.ema.update(run.model, None if player.name is None else player.param_names)
    return loss, grad_norm


def accumulate_gradients(run: Run, player: Player, parts: list[dict], n: int) -> torch.Tensor:
    """Gradients of the whole batch's loss from its micro-batches, one at a time (so
    only one micro-batch's activations are in memory): each micro-batch's mean loss
    is weighted by its share of the batch, so the summed gradients are those of the
    batch's mean loss. Under DDP the processes average gradients once, after the
    last micro-batch (no_sync skips the all-reduce for the others). Returns the
    batch's loss (detached)."""
    total = torch.zeros((), device=run.device)
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        no_sync = getattr(run.step_model, "no_sync", contextlib.nullcontext)
        with contextlib.nullcontext() if last else no_sync():
            with run.autocast():
                loss = player_loss(run, player, part)
            weighted = loss * (num_examples(part) / n)
            weighted.backward()
        total += weighted.detach()
    return total


def start_run(cfg: DictConfig, run_dir: Path) -> Run:
    """Build everything a run needs from the config; continue from
    ``checkpoints/last.pt`` when ``trainer.resume`` is set and it exists."""
    tc, data_cfg = plain(cfg.trainer), plain(cfg.data)
    ddp = init_distributed(cfg.device)
    # Before anything is built, so that a config the loop cannot run fails at once.
    check_recipe(tc, ddp.world_size)
    configured = player_settings(cfg)
    threads, why = pick_num_threads(tc.num_threads, ddp, getattr(data_cfg, "num_workers", 0))
    torch.set_num_threads(threads)
    make_deterministic(tc.deterministic)
    generator = seed_everything(cfg.seed)  # the same on every process: same global batches
    device = pick_device(cfg.device, ddp.local_rank)
    if ddp.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    splits = {name: on_device(split, device) for name, split in build_splits(data_cfg).items()}
    model = build_model(cfg.model, spec(data_cfg)).to(device)
    run = Run(
        run_dir=run_dir,
        tc=tc,
        loss_cfg=plain(cfg.loss),
        ddp=ddp,
        device=device,
        generator=generator,
        splits=splits,
        model=model,
        step_model=model,
        players=build_players(model, configured, device, tc.max_steps),
        batches=train_batches(data_cfg, splits["train"], tc.batch_size, generator, model),
        config=OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
    )
    if tc.ema_decay is not None:
        run.ema = WeightAverage(model, tc.ema_decay)
    if schema.Precision(tc.precision) == schema.Precision.bf16:
        run.autocast = partial(torch.autocast, device.type, dtype=torch.bfloat16)
    last_path = run_dir / "checkpoints" / "last.pt"
    if tc.resume and last_path.is_file():
        resume(run, last_path)
    elif tc.resume:
        log.info("trainer.resume: no checkpoint in %s yet; starting from step 0", run_dir)
    run.step_model = wrap_for_steps(run, cfg.seed)
    if tc.stall_warning_seconds:
        run.stall_watch = StallWatch(run.batches, tc.stall_warning_seconds)
    n_params = sum(p.numel() for p in model.parameters())
    log.info(
        "run dir: %s | device: %s | processes: %d | parameters: %d | CPU threads: %d (%s)",
        run_dir, device, ddp.world_size, n_params, threads, why,
    )  # fmt: skip
    return run


def player_settings(cfg: DictConfig) -> list[tuple[str | None, dict, tuple]]:
    """(name, its config, its optim and schedule settings) per player, in the
    order they step; checked (one line per error) before anything is built."""
    optim, schedule = plain(cfg.optim), plain(cfg.schedule)
    own = OmegaConf.to_container(cfg.players, resolve=True, enum_to_str=True)
    if PLAYERS is None:
        if own:
            raise ConfigError(
                f"players: {', '.join(own)} configured, but loss.py declares no PLAYERS: "
                "remove the players config, or declare the players next to the loss"
            )
        check_keys(optim, schedule)
        return [(None, {}, (optim, schedule))]
    unknown = sorted(set(own) - set(PLAYERS))
    if unknown:
        raise ConfigError(
            f"players.{unknown[0]} is configured, but loss.PLAYERS declares only "
            f"{', '.join(PLAYERS)}"
        )
    found = []
    for name in PLAYERS:
        mine = own.get(name, {})
        if mine.get("steps", 1) < 1:
            raise ConfigError(f"players.{name}.steps={mine['steps']}: a player takes >= 1 step")
        merged = settings(optim, schedule, mine)
        check_keys(*merged, prefix=f"players.{name}.")
        found.append((name, mine, merged))
    return found


def build_players(model, configured: list, device: torch.device, max_steps: int) -> list[Player]:
    """Each player with its parameters, optimiser and schedule (engine/players.py)."""
    if configured[0][0] is None:  # one player, the whole model
        params = [p for p in model.parameters() if p.requires_grad]
        names = tuple(n for n, p in model.named_parameters() if p.requires_grad)
        owned = {None: list(zip(names, params, strict=True))}
    else:
        owned = parameters_by_player(model, [name for name, _, _ in configured])
    players = []
    for name, own, (optim, schedule) in configured:
        mine = owned[name]
        prefix = "" if name is None else f"players.{name}."
        player = Player(
            name=name,
            params=[p for _, p in mine],
            param_names=tuple(n for n, _ in mine),
            oc=optim,
            schedule_cfg=schedule,
            steps=own.get("steps", 1),
            others=[pair for other, pairs in owned.items() if other != name for pair in pairs],
            loss_sum=torch.zeros((), device=device),
        )
        player.optimizer = build_optimizer(player.params, optim, device.type, f"{prefix}optim")
        updates = max_steps * player.steps
        player.schedule = build_schedule(schedule, updates, f"{prefix}schedule")
        players.append(player)
    return players


def wrap_for_steps(run: Run, seed: int) -> torch.nn.Module:
    """The model as training steps call it: data-parallel under torchrun, compiled
    with trainer.compile; the plain model otherwise (evaluation always uses it)."""
    step_model = run.model
    if run.ddp.world_size > 1:
        # The model's own randomness (dropout, sampled noise) must differ between
        # processes, or every process would draw the same noise for its share.
        # (Checkpoints hold process 0's states, so this also follows a resume.)
        torch.manual_seed(seed + run.ddp.rank + 1_000_003 * run.step)
    if run.ddp.world_size > 1 and PLAYERS is None:
        # Players average their own gradients instead (engine/players.py says why).
        device = run.device
        step_model = torch.nn.parallel.DistributedDataParallel(
            step_model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if run.tc.compile:
        step_model = torch.compile(step_model)
    return step_model


def resume(run: Run, path: Path) -> None:
    """Put back everything ``checkpoint_state`` saved."""
    state = load_checkpoint(path, map_location=run.device)
    refuse_changed_config(state["config"], run.config, path)
    run.model.load_state_dict(state["model"])
    for player in run.players:
        player.optimizer.load_state_dict(state["optimizer"][player_label(player)])
        player.loss_sum.fill_(state["loss_window"][player_label(player)][0])
        player.steps_in_sum = state["loss_window"][player_label(player)][1]
    if run.ema is not None:
        run.ema.model.load_state_dict(state["ema"])
    if hasattr(run.batches, "load_state_dict"):
        run.batches.load_state_dict(state["batches"])
    set_rng_states(state["rng"], run.generator)
    run.step, run.best, run.val = state["step"], state["best"], state["val"]
    run.train_losses = state["train_losses"]
    log.info("resuming %s from step %d", run.run_dir, run.step)


def checkpoint_state(run: Run) -> dict:
    """Everything needed to continue exactly: plain data and tensors only."""
    batches = run.batches
    state = {
        "model": run.model.state_dict(),
        # Per player (one, "model", unless loss.py declares PLAYERS).
        "optimizer": {player_label(p): p.optimizer.state_dict() for p in run.players},
        "batches": batches.state_dict() if hasattr(batches, "state_dict") else {},
        "rng": rng_states(run.generator),
        "step": run.step,
        "best": run.best,
        "val": run.val,
        "train_losses": run.train_losses,
        "loss_window": {player_label(p): [p.loss_sum.item(), p.steps_in_sum] for p in run.players},
        "config": run.config,
        "metrics": prefixed("val", run.val),
    }
    if run.ema is not None:
        state["ema"] = run.ema.model.state_dict()  # eval.py evaluates these weights
    return state


def player_label(player: Player) -> str:
    """Its name in checkpoints: "model" for the single player."""
    return player.name or "model"


def next_batch(run: Run, step: int) -> dict:
    """This process's share of the next training batch (and the time it took)."""
    start = time.perf_counter()
    if run.stall_watch is not None:
        run.stall_watch.waiting_since = start
    try:
        batch = shard(next(run.batches), run.ddp)
    except FloatingPointError as err:  # a collector that plays the model (RL)
        raise NonFiniteError(f"step {step}: {err}; {NON_FINITE_HINT}") from None
    if run.stall_watch is not None:
        run.stall_watch.waiting_since = None
    run.data_seconds += time.perf_counter() - start
    return batch


def log_training(run: Run, metrics_log: MetricsLog | None) -> None:
    """Per player, the mean loss since the last log line (over every process: the
    global batch's), the last gradient norm and LR, into metrics.jsonl: train/loss,
    train/grad_norm and lr for one player; train/<player>/loss, ... for players."""
    record = {"step": run.step}
    for player in run.players:
        loss = mean_over_processes(player.loss_sum / player.steps_in_sum, run.ddp).item()
        player.loss_sum.zero_()
        player.steps_in_sum = 0
        run.train_losses[player.key("loss")] = loss
        record[player.key("loss")] = loss
        record[player.key("grad_norm")] = player.grad_norm.item()
        record[player.lr_key] = player.lr
    # What the data iterator reports about itself (train_batches' contract): RL's
    # environment steps and episode returns, a replay buffer's size, epsilon.
    if hasattr(run.batches, "scalars"):
        record.update(prefixed("data", run.batches.scalars()))
    if metrics_log is not None:
        metrics_log.write(record)


def evaluate_and_checkpoint(run: Run, metrics_log: MetricsLog, batch_size: int) -> None:
    """Validation metrics into the log; checkpoints/last.pt, and best.pt when the
    headline metric improved on every earlier validation."""
    run.val = evaluate(run.evaluated_model, run.splits["val"], batch_size, run.config)
    metrics_log.write({"step": run.step, **prefixed("val", run.val)})
    weights = "" if run.ema is None else " (EMA weights)"
    # Before the first log window closes (eval_every < log_every) there is no mean
    # yet: "-", not a NaN that reads like divergence.
    losses = " ".join(f"{k.removeprefix('train/')} {v:.4f}" for k, v in run.train_losses.items())
    log.info(
        "step %d | train %s | val%s %s", run.step, losses or "loss -", weights,
        format_metrics(run.val),
    )  # fmt: skip
    improved = run.best is None or is_better(run.val[HEADLINE_METRIC], run.best)
    if improved:
        run.best = run.val[HEADLINE_METRIC]
    state = checkpoint_state(run)
    refuse_non_finite_weights(run.model, run.step)
    last_path = run.run_dir / "checkpoints" / "last.pt"
    save_checkpoint(last_path, state)
    if improved:
        save_checkpoint(last_path.with_name("best.pt"), state)


def finish_run(run: Run, train_seconds: float, eval_seconds: float) -> float:
    """After the last step: metrics.json (final validation metrics, the paper type's
    summary, timings) and training_curves.png; returns the headline metric."""
    agree = ranks_agree(run.model, run.ddp)  # every process takes part in this check
    run.step_model = run.model  # lets go of the DDP wrapper's hold on the process group
    leave_distributed(run.ddp)
    if not run.ddp.is_main:
        return run.val.get(HEADLINE_METRIC, float("nan"))
    # The paper type's own look at the result (sample outputs, pictures, split-wide
    # statistics); its numbers go into metrics.json next to the validation metrics.
    run.evaluated_model.eval()
    with torch.no_grad():
        summary = summarise(run.evaluated_model, run.splits, run.run_dir)
    final = {
        "step": run.step,
        **{p.key("loss"): run.train_losses.get(p.key("loss")) for p in run.players},
        **prefixed("val", run.val),
        **summary,
        # Which weights the val metrics (and best.pt's choice) are of.
        "evaluated_weights": "trained" if run.ema is None else f"ema {run.ema.decay}",
        # The checkpoint test numbers come from (engine/run_log.py: reported_checkpoint).
        "test_checkpoint": run.tc.test_checkpoint,
        "train_seconds": round(train_seconds, 2),  # the loop, validation included
        "eval_seconds": round(eval_seconds, 2),
        # Of train_seconds, the time the loop waited for batches: a loop slowed
        # by its data (an environment, a disk) shows it here.
        "data_seconds": round(run.data_seconds, 2),
        "device": str(run.device),
        "world_size": run.ddp.world_size,
        "ranks_agree": agree,
    }
    (run.run_dir / "metrics.json").write_text(json.dumps(final, indent=2) + "\n")
    records = read_jsonl(run.run_dir / "metrics.jsonl")
    first_loss = run.players[0].key("loss")
    if run.tc.plot and sum(first_loss in r for r in records) >= 2:
        from .engine.plots import plot_training  # matplotlib (~0.5 s): only when there is a plot

        plot_training(records, HEADLINE_METRIC, run.run_dir)
    log.info("done: %s", json.dumps(final))
    log.info(
        "evaluate with: python -m {{ cookiecutter.package_name }}.eval ckpt_path=%s",
        reported_checkpoint(run.run_dir),
    )
    return run.val[HEADLINE_METRIC]


def finished_headline(run_dir: Path, max_steps: int) -> float | None:
    """The headline metric of a run in ``run_dir`` that already finished ``max_steps``."""
    if not (run_dir / "metrics.json").is_file():
        return None
    final = json.loads((run_dir / "metrics.json").read_text())
    if final.get("step") != max_steps:
        return None
    log.info("%s already finished %d steps; nothing to resume", run_dir, max_steps)
    return final[f"val/{HEADLINE_METRIC}"]


def mean_over_processes(value: torch.Tensor, ddp) -> torch.Tensor:
    if ddp.world_size > 1:
        torch.distributed.all_reduce(value)
        value = value / ddp.world_size
    return value


def is_better(value: float, best: float) -> bool:
    return value > best if HEADLINE_MODE == "max" else value < best


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float:
    quiet_unless_rank_zero()
    # Hydra picks a fresh run directory per run (hydra.run.dir in configs/train.yaml).
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    in_sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    if in_sweep and cfg.trainer.resume and (run_dir / "diverged.json").is_file():
        log.warning("%s diverged in an earlier attempt; not repeating it", run_dir)
        return float("nan")
    try:
        return train(cfg, run_dir)
    except NonFiniteError as err:
        (run_dir / "diverged.json").write_text(json.dumps({"error": str(err)}) + "\n")
        if in_sweep:
            # One diverged job is a result of a sweep (too high an LR), not a reason
            # to stop the others: the sweep summary lists it as diverged.
            log.error("%s", err)
            return float("nan")
        raise SystemExit(f"error: {err}") from None
    except (CheckpointError, ConfigError) as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    # Call main() of the importable module, not of __main__: launchers that pickle
    # the job for another process (submitit, for SLURM) can then name it.
    importlib.import_module(__spec__.name).main()
