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
import os
import time
from functools import partial
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from . import schema
from .ckpt import CheckpointError, load_checkpoint, save_checkpoint
from .data import build_splits, spec, train_batches
from .eval import evaluate
from .loss import HEADLINE_METRIC, HEADLINE_MODE, loss_fn, summarise
from .model import build_model
from .optim import build_optimizer, lr_factor
from .runtime import (
    init_distributed,
    make_deterministic,
    pick_device,
    plain,
    ranks_agree,
    rng_states,
    seed_everything,
    set_rng_states,
    shard,
)

log = logging.getLogger(__name__)
schema.register()  # before @hydra.main composes the config

# Keys that may change when a run is resumed; any other change would make the
# continued run a different experiment, so resuming refuses it.
RESUMABLE_CHANGES = {"trainer.resume", "device", "trainer.detect_anomaly", "trainer.tensorboard"}


NON_FINITE_HINT = (
    "training stopped, checkpoints keep the last finite weights. Try a lower optim.lr, "
    "check log/exp/division in the loss, or rerun with trainer.detect_anomaly=true"
)


class NonFiniteError(FloatingPointError):
    """The loss or a gradient became NaN or infinite; the message says where."""


class MetricsLog:
    """metrics.jsonl (one JSON object per line, flushed as written, so it can be read
    mid-run) and, when the tensorboard package is installed, the same scalars for
    TensorBoard (``tensorboard --logdir runs``)."""

    def __init__(self, run_dir: Path, resume_after: int | None, tensorboard: bool):
        self.path = run_dir / "metrics.jsonl"
        if resume_after is None:
            # A fresh run in an existing directory replaces its log, as it
            # replaces metrics.json and the checkpoints.
            self.path.write_text("")
        else:
            # Resumed: forget what was logged after the checkpoint; it is redone.
            kept = [r for r in read_jsonl(self.path) if r["step"] <= resume_after]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self.tensorboard = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # optional: pip install -e ".[tensorboard]"
                pass
            else:
                self.tensorboard = SummaryWriter(run_dir / "tensorboard", purge_step=resume_after)

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.tensorboard is not None:
            for name, value in record.items():
                if name != "step":
                    self.tensorboard.add_scalar(name, value, record["step"])

    def close(self) -> None:
        self.file.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def train(cfg: DictConfig, run_dir: str | Path) -> float:
    """Train as ``cfg`` says, write outputs to ``run_dir``; return the headline val metric."""
    run_dir = Path(run_dir)
    # Plain objects for what the loop reads every step (runtime.plain says why).
    tc, oc, data_cfg, loss_cfg = (
        plain(cfg[group]) for group in ("trainer", "optim", "data", "loss")
    )
    if tc.resume and (run_dir / "metrics.json").is_file():
        final = json.loads((run_dir / "metrics.json").read_text())
        if final.get("step") == tc.max_steps:  # nothing left to do (a finished sweep job)
            log.info("%s already finished %d steps; nothing to resume", run_dir, tc.max_steps)
            return final[f"val/{HEADLINE_METRIC}"]

    ddp = init_distributed(cfg.device)
    if tc.batch_size % ddp.world_size:
        raise ValueError(
            f"trainer.batch_size={tc.batch_size} must be divisible by the number of "
            f"processes ({ddp.world_size}): each one takes an equal share of a batch"
        )
    make_deterministic(tc.deterministic)
    generator = seed_everything(cfg.seed)  # the same on every process: same global batches
    device = pick_device(cfg.device, ddp.local_rank)
    if ddp.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)

    splits = build_splits(data_cfg)
    splits = {
        name: {key: tensor.to(device) for key, tensor in split.items()}
        for name, split in splits.items()
    }
    model = build_model(cfg.model, spec(data_cfg)).to(device)
    optimizer = build_optimizer(model, oc)
    schedule = partial(
        lr_factor,
        warmup_steps=oc.warmup_steps,
        max_steps=tc.max_steps,
        min_lr_ratio=oc.min_lr_ratio,
    )
    batches = train_batches(data_cfg, splits["train"], tc.batch_size, generator, model)
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)

    # Summed on the device and read back only at log time: .item() every step
    # would force the host to wait for the accelerator each iteration.
    loss_sum = torch.zeros((), device=device)
    steps_in_sum = 0
    start_step, best, val, train_loss = 0, None, {}, float("nan")
    last_path = run_dir / "checkpoints" / "last.pt"
    if tc.resume and last_path.is_file():
        state = load_checkpoint(last_path, map_location=device)
        refuse_changed_config(state["config"], config, last_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if hasattr(batches, "load_state_dict"):
            batches.load_state_dict(state["batches"])
        set_rng_states(state["rng"], generator)
        start_step, best, val = state["step"], state["best"], state["val"]
        train_loss = state["train_loss"]
        loss_sum.fill_(state["loss_window"][0])
        steps_in_sum = state["loss_window"][1]
        log.info("resuming %s from step %d", run_dir, start_step)
    elif tc.resume:
        log.info("trainer.resume: no checkpoint in %s yet; starting from step 0", run_dir)
    if ddp.world_size > 1:
        # The model's own randomness (dropout, sampled noise) must differ between
        # processes, or every process would draw the same noise for its share.
        # (Checkpoints hold process 0's states, so this also follows a resume.)
        torch.manual_seed(cfg.seed + ddp.rank + 1_000_003 * start_step)

    # The module that takes training steps: compiled and/or wrapped for data
    # parallelism. ``model`` itself stays plain for evaluation and checkpoints.
    step_model = model
    if ddp.world_size > 1:
        step_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if tc.compile:
        step_model = torch.compile(step_model)
    check_every = tc.check_finite_every or (1 if device.type == "cpu" else tc.log_every)
    bf16 = schema.Precision(tc.precision) == schema.Precision.bf16
    autocast = partial(torch.autocast, device.type, dtype=torch.bfloat16)
    if not bf16:
        autocast = contextlib.nullcontext  # no per-step cost when it is off

    n_params = sum(p.numel() for p in model.parameters())
    log.info(
        "run dir: %s | device: %s | processes: %d | parameters: %d",
        run_dir, device, ddp.world_size, n_params,
    )  # fmt: skip
    metrics_log = None
    if ddp.is_main:
        metrics_log = MetricsLog(run_dir, start_step if start_step else None, tc.tensorboard)
        if start_step == 0:
            val = evaluate(model, splits["val"], tc.eval_batch_size)
            metrics_log.write({"step": 0, **prefixed("val", val)})
            log.info("step 0 (init) | val %s", _fmt(val))

    start, eval_seconds = time.perf_counter(), 0.0
    step_model.train()  # evaluate() puts the model back in training mode after itself
    progress = tqdm(
        range(start_step + 1, tc.max_steps + 1),
        initial=start_step,
        total=tc.max_steps,
        disable=None if ddp.is_main else True,
        dynamic_ncols=True,
    )
    anomaly = torch.autograd.set_detect_anomaly(True) if tc.detect_anomaly else None
    try:
        with anomaly or contextlib.nullcontext():
            for step in progress:
                try:
                    batch = shard(next(batches), ddp)
                except FloatingPointError as err:  # a collector that plays the model (RL)
                    raise NonFiniteError(f"step {step}: {err}; {NON_FINITE_HINT}") from None
                with autocast():
                    loss = loss_fn(step_model(batch["inputs"]), batch, loss_cfg)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                # Clipping bounds one bad batch's damage; the norm is kept for the log.
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), oc.grad_clip)
                # A NaN or inf anywhere in the loss or the gradients makes the norm
                # non-finite: stop before the optimiser writes it into the weights
                # (on a GPU only every check_every steps: each check waits for it).
                # .item() and math: ~0.2 us, where torch.isfinite is an op (~5 us).
                if step % check_every == 0 and not math.isfinite(grad_norm.item()):
                    raise NonFiniteError(describe_non_finite(step, loss, model))
                optimizer.set_lr(lr := oc.lr * schedule(step - 1))
                optimizer.step()
                loss_sum += loss.detach()
                steps_in_sum += 1

                if step % tc.log_every == 0 or step == tc.max_steps:
                    # Every process takes part: the logged loss is the global batch's.
                    train_loss = mean_over_processes(loss_sum / steps_in_sum, ddp).item()
                    loss_sum.zero_()
                    steps_in_sum = 0
                if ddp.is_main and (step % tc.log_every == 0 or step == tc.max_steps):
                    metrics_log.write(
                        {
                            "step": step,
                            "train/loss": train_loss,
                            "train/grad_norm": grad_norm.item(),
                            "lr": lr,
                        }
                    )
                    progress.set_postfix(loss=f"{train_loss:.4f}")
                if ddp.is_main and (step % tc.eval_every == 0 or step == tc.max_steps):
                    eval_start = time.perf_counter()
                    val = evaluate(model, splits["val"], tc.eval_batch_size)
                    eval_seconds += time.perf_counter() - eval_start
                    metrics_log.write({"step": step, **prefixed("val", val)})
                    log.info("step %d | train loss %.4f | val %s", step, train_loss, _fmt(val))
                    improved = best is None or is_better(val[HEADLINE_METRIC], best)
                    if improved:
                        best = val[HEADLINE_METRIC]
                    state = {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "batches": batches.state_dict() if hasattr(batches, "state_dict") else {},
                        "rng": rng_states(generator),
                        "step": step,
                        "best": best,
                        "val": val,
                        "train_loss": train_loss,
                        "loss_window": [loss_sum.item(), steps_in_sum],
                        "config": config,
                        "metrics": prefixed("val", val),
                    }
                    refuse_non_finite_weights(model, step)
                    save_checkpoint(last_path, state)
                    if improved:
                        save_checkpoint(last_path.with_name("best.pt"), state)
    finally:
        progress.close()
        if metrics_log is not None:
            metrics_log.close()
    train_seconds = time.perf_counter() - start

    agree = ranks_agree(model, ddp)  # every process takes part in this check
    if ddp.world_size > 1:
        torch.distributed.destroy_process_group()
    if not ddp.is_main:
        return val.get(HEADLINE_METRIC, float("nan"))
    # The paper type's own look at the result (sample outputs, pictures, split-wide
    # statistics); its numbers go into metrics.json next to the validation metrics.
    model.eval()
    with torch.no_grad():
        summary = summarise(model, splits, run_dir)
    final = {
        "step": tc.max_steps,
        "train/loss": train_loss,
        **prefixed("val", val),
        **summary,
        "train_seconds": round(train_seconds, 2),  # the loop, validation included
        "eval_seconds": round(eval_seconds, 2),
        "device": str(device),
        "world_size": ddp.world_size,
        "ranks_agree": agree,
    }
    (run_dir / "metrics.json").write_text(json.dumps(final, indent=2) + "\n")
    records = read_jsonl(run_dir / "metrics.jsonl")
    if tc.plot and sum("train/loss" in r for r in records) >= 2:  # one point is no curve
        from .plots import plot_training  # matplotlib (~0.5 s): only when there is a plot

        plot_training(records, HEADLINE_METRIC, run_dir)
    log.info("done: %s", json.dumps(final))
    log.info(
        "evaluate with: python -m {{ cookiecutter.package_name }}.eval ckpt_path=%s",
        last_path,
    )
    return val[HEADLINE_METRIC]


def mean_over_processes(value: torch.Tensor, ddp) -> torch.Tensor:
    if ddp.world_size > 1:
        torch.distributed.all_reduce(value)
        value = value / ddp.world_size
    return value


def is_better(value: float, best: float) -> bool:
    return value > best if HEADLINE_MODE == "max" else value < best


def describe_non_finite(step: int, loss: torch.Tensor, model: torch.nn.Module) -> str:
    """One line: where the first NaN/inf is, and what to try."""
    where = f"the loss is {loss.item()}"
    if math.isfinite(loss.item()):
        for name, param in model.named_parameters():
            if param.grad is not None and not torch.isfinite(param.grad).all():
                where = f"the gradient of {name} is not finite (loss {loss.item():.4g})"
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
    changed = [k for k in changed if k not in RESUMABLE_CHANGES]
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


def prefixed(split: str, metrics: dict[str, float]) -> dict[str, float]:
    """{"loss": 0.1} -> {"val/loss": 0.1}: the names used in the logs and metrics.json."""
    return {f"{split}/{name}": value for name, value in metrics.items()}


def _fmt(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in metrics.items())


def _quiet_unless_rank_zero() -> None:
    # Under torchrun every process runs Hydra's logging setup; only rank 0 keeps
    # the run's log file (and prints progress), the others report warnings only.
    if int(os.environ.get("RANK", "0")) != 0:
        root = logging.getLogger()
        for handler in list(root.handlers):
            if isinstance(handler, logging.FileHandler):
                root.removeHandler(handler)
        root.setLevel(logging.WARNING)


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float:
    _quiet_unless_rank_zero()
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
    except CheckpointError as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    # Call main() of the importable module, not of __main__: launchers that pickle
    # the job for another process (submitit, for SLURM) can then name it.
    importlib.import_module(__spec__.name).main()
