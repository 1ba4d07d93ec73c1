"""Training: one plain PyTorch loop, configured by Hydra.

    python -m {{ cookiecutter.package_name }}.train
    python -m {{ cookiecutter.package_name }}.train experiment=reference
    python -m {{ cookiecutter.package_name }}.train optim.lr=1e-3 trainer.max_steps=500

The first uses configs/train.yaml as it is; the second adds the run behind the
reference number in PAPER.md; the third overrides single values.

Each run writes to its own directory (printed at the start):
    metrics.jsonl         one JSON object per logged step (train and val)
    metrics.json          final validation metrics (+ the paper type's summary)
    checkpoints/last.pt   weights, optimiser, schedule, step and resolved config
    .hydra/               the composed config and the overrides used

``train(cfg, run_dir)`` does the work and can be called without Hydra (the tests do).
"""

from __future__ import annotations

import json
import logging
import math
import time
from functools import partial
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from .ckpt import save_checkpoint
from .data import build_splits, spec, train_batches
from .eval import evaluate
from .loss import HEADLINE_METRIC, loss_fn, summarise
from .model import build_model
from .runtime import pick_device, seed_everything

log = logging.getLogger(__name__)


def build_optimizer(model: torch.nn.Module, cfg) -> torch.optim.Optimizer:
    """AdamW; weight decay on matrices only (not on biases or LayerNorm gains)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))


def lr_factor(step: int, warmup_steps: int, max_steps: int, min_lr_ratio: float) -> float:
    """Linear warm-up to the peak LR, then cosine decay to min_lr_ratio * peak."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    return min_lr_ratio + (1.0 - min_lr_ratio) * cosine


class JsonlLog:
    """Metrics log: one JSON object per line, flushed as written (readable mid-run)."""

    def __init__(self, path: Path):
        # "w": a run started in an existing directory replaces its log, as it
        # replaces metrics.json and the checkpoint.
        self.file = open(path, "w", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def train(cfg: DictConfig, run_dir: str | Path) -> float:
    """Train as ``cfg`` says, write outputs to ``run_dir``; return the headline val metric."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    generator = seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    tc = cfg.trainer

    splits = build_splits(cfg.data)
    splits = {
        name: {key: tensor.to(device) for key, tensor in split.items()}
        for name, split in splits.items()
    }
    model = build_model(cfg.model, spec(cfg.data)).to(device)
    optimizer = build_optimizer(model, cfg.optim)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        partial(
            lr_factor,
            warmup_steps=cfg.optim.warmup_steps,
            max_steps=tc.max_steps,
            min_lr_ratio=cfg.optim.min_lr_ratio,
        ),
    )
    n_params = sum(p.numel() for p in model.parameters())
    log.info("run dir: %s | device: %s | parameters: %d", run_dir, device, n_params)

    metrics_log = JsonlLog(run_dir / "metrics.jsonl")
    val = evaluate(model, splits["val"], tc.eval_batch_size)
    metrics_log.write({"step": 0, **prefixed("val", val)})
    log.info("step 0 (init) | val %s", _fmt(val))

    batches = train_batches(cfg.data, splits["train"], tc.batch_size, generator, model)
    # Summed on the device and read back only at log time: .item() every step
    # would force the host to wait for the accelerator each iteration.
    loss_sum = torch.zeros((), device=device)
    steps_in_sum = 0
    train_loss = float("nan")
    start = time.perf_counter()
    progress = tqdm(range(1, tc.max_steps + 1), disable=None, dynamic_ncols=True)
    for step in progress:
        model.train()
        batch = next(batches)
        loss = loss_fn(model(batch["inputs"]), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        # Clipping bounds one bad batch's damage; the norm is kept for the log.
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        optimizer.step()
        scheduler.step()
        loss_sum += loss.detach()
        steps_in_sum += 1

        if step % tc.log_every == 0 or step == tc.max_steps:
            train_loss = (loss_sum / steps_in_sum).item()
            loss_sum.zero_()
            steps_in_sum = 0
            metrics_log.write(
                {
                    "step": step,
                    "train/loss": train_loss,
                    "train/grad_norm": grad_norm.item(),
                    "lr": scheduler.get_last_lr()[0],
                }
            )
            progress.set_postfix(loss=f"{train_loss:.4f}")
        if step % tc.eval_every == 0 or step == tc.max_steps:
            val = evaluate(model, splits["val"], tc.eval_batch_size)
            metrics_log.write({"step": step, **prefixed("val", val)})
            log.info("step %d | train loss %.4f | val %s", step, train_loss, _fmt(val))
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "step": step,
                "config": OmegaConf.to_container(cfg, resolve=True),
                "metrics": prefixed("val", val),
            }
            save_checkpoint(run_dir / "checkpoints" / "last.pt", state)
    metrics_log.close()
    train_seconds = time.perf_counter() - start

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
        "train_seconds": round(train_seconds, 2),
        "device": str(device),
    }
    (run_dir / "metrics.json").write_text(json.dumps(final, indent=2) + "\n")
    log.info("done: %s", json.dumps(final))
    log.info(
        "evaluate with: python -m {{ cookiecutter.package_name }}.eval ckpt_path=%s",
        run_dir / "checkpoints" / "last.pt",
    )
    return val[HEADLINE_METRIC]


def prefixed(split: str, metrics: dict[str, float]) -> dict[str, float]:
    """{"loss": 0.1} -> {"val/loss": 0.1}: the names used in the logs and metrics.json."""
    return {f"{split}/{name}": value for name, value in metrics.items()}


def _fmt(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in metrics.items())


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float:
    # Hydra picks a fresh run directory per run (hydra.run.dir in configs/train.yaml).
    return train(cfg, HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
