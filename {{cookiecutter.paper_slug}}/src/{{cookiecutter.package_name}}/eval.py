"""Evaluation: metrics of a trained checkpoint on a held-out split.

    python -m {{ cookiecutter.package_name }}.eval ckpt_path=runs/<date>/<time>/checkpoints/last.pt
    python -m {{ cookiecutter.package_name }}.eval ckpt_path=latest split=val

Prints the metrics as one JSON object on a line of its own (scripts can parse the
last line of stdout) and writes them to ``eval_<split>.json`` in the checkpoint's
run directory (or to ``output=...``).

The model and data are rebuilt from the config stored in the checkpoint, so the
evaluation always matches what was trained.
"""

from __future__ import annotations

import json
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from . import loss as paper_loss
from .configs import schema
from .data import build_splits, spec
from .engine.batches import in_order, num_examples, on_device
from .engine.ckpt import CheckpointError, load_checkpoint
from .engine.run_log import reported_checkpoint
from .engine.runtime import pick_device
from .loss import metrics_fn, split_metrics
from .model import build_model

schema.register()  # before @hydra.main composes the config


@torch.no_grad()
def evaluate(model: torch.nn.Module, split, batch_size: int, cfg=None) -> dict[str, float]:
    """The metrics of ``model`` on a whole split, in eval mode: the mean of each
    per-example metric (``loss.metrics_fn``) and, when the composed config ``cfg``
    is given (a DictConfig or the plain dict a checkpoint stores), the split-level
    ones (``loss.split_metrics``: sample quality, a worst case, anything that is not
    a mean over examples) and the paper's baselines on the split (``loss.baselines``,
    as ``<metric>_<baseline>``: ``bpc_bigram``). Training's validation and eval.py
    both pass it.

    Batches are taken in order (no shuffling, no dropped tail), so the per-example
    means do not depend on the batch size beyond floating-point rounding. A split
    that is a Dataset is read by a DataLoader (trainer.eval_num_workers workers).
    """
    was_training = model.training
    model.eval()  # dropout off, batch norm on running statistics: no batch effects
    device = next(model.parameters(), torch.empty(0)).device
    workers = as_config(cfg).trainer.get("eval_num_workers", 0) if cfg is not None else 0
    n = num_examples(split)
    sums: dict[str, torch.Tensor] = {}
    for batch in in_order(split, batch_size, device, workers):
        for name, values in metrics_fn(model, batch).items():
            sums[name] = sums.get(name, 0) + values.float().sum()  # float32: MPS has no float64
    # One host sync for all metrics, at the end.
    metrics = {name: total.item() / n for name, total in sums.items()}
    if cfg is not None:
        whole = split_metrics(model, split, as_config(cfg))
        clash = sorted(metrics.keys() & whole.keys())
        if clash:
            raise ValueError(f"split_metrics and metrics_fn both return {clash}: rename one")
        metrics.update({name: float(value) for name, value in whole.items()})
        beside = split_baselines(split, as_config(cfg))
        clash = sorted(metrics.keys() & beside.keys())
        if clash:
            raise ValueError(f"loss.baselines gives {clash}, a name a metric has: rename one")
        metrics.update(beside)
    model.train(was_training)
    return metrics


# The baselines of the last split evaluated: every validation of a run evaluates
# the same split object with the same config, and its baselines do not change.
_last_baselines: tuple = (None, None, {})


def split_baselines(split, cfg: DictConfig) -> dict[str, float]:
    """``loss.baselines(split, cfg)`` (the numbers the paper compares against, which
    need no model: an n-gram model, independent pixels, a random policy) flattened
    to ``{"<metric>_<baseline>": value}``; computed once per split and config, and
    ``{}`` for a paper that declares none."""
    global _last_baselines
    baselines = getattr(paper_loss, "baselines", None)
    if baselines is None:
        return {}
    if _last_baselines[0] is not split or _last_baselines[1] is not cfg:
        flat = {
            f"{metric}_{name}": float(value)
            for name, values in baselines(split, cfg).items()
            for metric, value in values.items()
        }
        _last_baselines = (split, cfg, flat)
    return dict(_last_baselines[2])


def headline_baselines(split, cfg: DictConfig) -> dict[str, float]:
    """The declared baselines of the headline metric on ``split``: {baseline: value}."""
    baselines = getattr(paper_loss, "baselines", None)
    if baselines is None:
        return {}
    values = baselines(split, cfg)
    return {
        name: float(v[paper_loss.HEADLINE_METRIC])
        for name, v in values.items()
        if paper_loss.HEADLINE_METRIC in v
    }


# The last plain config converted, and its DictConfig: train.py passes the same
# dict at every validation, and OmegaConf.create takes ~6 ms (as long as a small
# model's whole evaluation).
_last_converted: tuple = (None, None)


def as_config(cfg) -> DictConfig:
    """``cfg`` as a DictConfig: a plain dict (a checkpoint's config, which train.py
    holds) is converted once, read-only (split_metrics only reads it)."""
    global _last_converted
    if not isinstance(cfg, dict):
        return cfg
    if _last_converted[0] is not cfg:
        _last_converted = (cfg, OmegaConf.create(cfg, flags={"readonly": True}))
    return _last_converted[1]


def latest_checkpoint(root: Path = Path("runs")) -> Path:
    """The reported checkpoint (engine/run_log.py: reported_checkpoint; last.pt unless
    the run's config says trainer.test_checkpoint=best) of the run below ``root``
    whose ``checkpoints/last.pt`` was written most recently."""
    found = sorted(root.glob("**/checkpoints/last.pt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise CheckpointError(
            f"ckpt_path=latest found no checkpoints/last.pt under {root.resolve()}; "
            "train first or pass ckpt_path=<file>"
        )
    return reported_checkpoint(found[-1].parent.parent)


def evaluate_checkpoint(
    ckpt_path: str | Path, split: str = "test", batch_size: int = 512, device: str = "auto"
) -> dict[str, float]:
    """Rebuild model and data from the checkpoint's config and evaluate on ``split``."""
    device = pick_device(device)
    state = load_checkpoint(ckpt_path, map_location=device)
    cfg = OmegaConf.create(state["config"])
    splits = build_splits(cfg.data)
    if split not in splits:
        raise ValueError(f"split={split!r} is not one of {sorted(splits)}")
    model = build_model(cfg.model, spec(cfg.data)).to(device)
    try:
        # A run with trainer.ema_decay validated (and chose best.pt by) the weight
        # average: evaluate the same weights.
        model.load_state_dict(state.get("ema", state["model"]))
    except RuntimeError as err:
        raise CheckpointError(
            f"checkpoint {ckpt_path} does not fit the model its config describes: "
            f"{str(err).splitlines()[0]}"
        ) from None
    data = on_device(splits[split], device)
    metrics = evaluate(model, data, batch_size, cfg)
    weights = "ema" if "ema" in state else "trained"
    return {"split": split, "step": state["step"], "weights": weights, **metrics}


@hydra.main(version_base="1.3", config_path="configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    if OmegaConf.is_missing(cfg, "ckpt_path"):
        raise SystemExit("error: say which checkpoint: ckpt_path=<file> or ckpt_path=latest")
    try:
        ckpt = latest_checkpoint() if cfg.ckpt_path == "latest" else Path(cfg.ckpt_path)
        metrics = evaluate_checkpoint(ckpt, cfg.split, cfg.batch_size, cfg.device)
    except CheckpointError as err:
        raise SystemExit(f"error: {err}") from None
    metrics["ckpt_path"] = str(ckpt)
    # <run dir>/checkpoints/<last or best>.pt -> <run dir>/eval_<split>.json
    output = Path(cfg.output) if cfg.output else ckpt.parent.parent / f"eval_{cfg.split}.json"
    output.write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics), flush=True)


if __name__ == "__main__":
    main()
