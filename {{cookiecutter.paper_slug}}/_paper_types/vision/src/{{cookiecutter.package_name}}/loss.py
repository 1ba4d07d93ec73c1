"""Loss and metrics for classification.

Every reduction is written out: ``loss`` is the mean over the batch of each
example's negative log-likelihood of its true class (what ``F.cross_entropy``
computes with its default ``reduction="mean"``). Metrics are per example;
evaluation averages them over the split.

Contract shared with the rest of the package (every paper type provides it):
``loss_fn``, ``metrics_fn``, ``split_metrics``, ``HEADLINE_METRIC``,
``expected_loss_at_init``, ``memorised`` and ``summarise``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import MISSING

from .engine.batches import in_order

# The number the example is judged by (PAPER.md), and the value train() returns.
HEADLINE_METRIC = "acc"
HEADLINE_MODE = "max"  # higher is better: best.pt and the sweep summaries rank by it


@dataclass
class LossConfig:
    """The keys of configs/loss/*.yaml and their types (see configs/schema.py)."""

    label_smoothing: float = MISSING


def example_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """-log p(true class) per example, [N]; log_softmax is stable for any logits."""
    log_probs = logits.log_softmax(dim=-1)
    return -log_probs.gather(1, targets.unsqueeze(1)).squeeze(1)


def loss_fn(logits: torch.Tensor, batch: dict[str, torch.Tensor], cfg) -> torch.Tensor:
    """Mean over the batch of the per-example NLL: a scalar to minimise.

    With ``cfg.label_smoothing`` = e > 0 the target is (1 - e) on the true class and
    e spread evenly over all classes: (1 - e) * NLL + e * mean over classes of -log p.
    """
    nll = example_nll(logits, batch["targets"])
    if cfg.label_smoothing:
        uniform_nll = -logits.log_softmax(dim=-1).mean(dim=-1)
        nll = (1 - cfg.label_smoothing) * nll + cfg.label_smoothing * uniform_nll
    return nll.mean()


def metrics_fn(model, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-example metrics of ``model`` on ``batch``, each of shape [N].

    Evaluation averages them over the split; the caller sets eval mode and no_grad.
    """
    logits = model(batch["inputs"])
    return {
        "loss": example_nll(logits, batch["targets"]),
        "acc": (logits.argmax(dim=-1) == batch["targets"]).float(),
    }


def memorised(model, batch: dict[str, torch.Tensor]) -> bool:
    """The overfit checks' pass condition: every example classified right with a
    loss near zero."""
    with torch.no_grad():
        metrics = metrics_fn(model, batch)
    return bool(metrics["acc"].min() == 1 and metrics["loss"].max() < 0.01)


def expected_loss_at_init(data_spec: dict[str, int], batch, cfg) -> float:
    """Loss of a uniform guess over the classes: what an untrained model should show."""
    return math.log(data_spec["num_classes"])


def confusion_matrix(model, split, num_workers: int = 0) -> torch.Tensor:
    """[C, C] counts on the CPU: rows the true class, columns the predicted one.
    The split read in order, in batches (in_order: slices of tensors in memory, or
    a Dataset's files through a DataLoader with ``num_workers`` workers)."""
    device = next(model.parameters()).device if isinstance(model, torch.nn.Module) else None
    targets, predicted, n = [], [], 0
    for batch in in_order(split, 512, device, num_workers):
        logits = model(batch["inputs"])
        predicted.append(logits.argmax(dim=-1).cpu())
        targets.append(batch["targets"].cpu())
        n = logits.size(-1)  # the number of classes (a split may lack some)
    targets, predicted = torch.cat(targets), torch.cat(predicted)
    confusion = torch.zeros(n, n, dtype=torch.long)
    confusion.index_put_((targets, predicted), torch.ones_like(predicted), accumulate=True)
    return confusion


def split_metrics(model, split: dict[str, torch.Tensor], cfg) -> dict[str, float]:
    """Metrics of a whole split that are not a mean over its examples (evaluation
    adds them to metrics_fn's means, in training's validation and in eval.py): the
    accuracy of the worst class, which the overall accuracy averages away. One
    forward pass over the split (~20 ms for the digits' validation files)."""
    workers = cfg.trainer.get("eval_num_workers", 0) if cfg is not None else 0
    confusion = confusion_matrix(model, split, workers)
    counts = confusion.sum(dim=1)
    present = counts > 0  # a class missing from the split has no accuracy
    per_class = confusion.diag()[present] / counts[present]
    return {"worst_class_acc": per_class.min().item()}


def summarise(model, splits, run_dir: Path) -> dict[str, float]:
    """After training: the validation confusion matrix in ``confusion.txt`` (rows:
    true class, columns: predicted); the worst class's accuracy is in the
    validation metrics already (split_metrics)."""
    confusion = confusion_matrix(model, splits["val"])
    rows = [" ".join(f"{count:4d}" for count in row) for row in confusion.tolist()]
    (Path(run_dir) / "confusion.txt").write_text("\n".join(rows) + "\n")
    return {}
