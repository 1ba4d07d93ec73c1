"""Loss and metrics for next-token prediction on the reversal task.

Every reduction is written out:
- a position counts only if its target is not ``IGNORE`` (the reversed half);
- ``loss`` is the mean negative log-likelihood over all counted tokens in the batch
  (sum over counted tokens / number of counted tokens), which is what
  ``F.cross_entropy(..., ignore_index=-100)`` computes;
- per-example metrics average over that example's counted tokens, and evaluation
  averages them over examples. Every example here has the same number of counted
  tokens, so both views agree; with ragged answers they would not.

``seq_acc`` scores each answer token given the true tokens before it (teacher
forcing, as training sees them); ``generated_seq_acc`` (``split_metrics``) lets the
model write its whole answer from the prompt alone (model.generate, greedy), as it
would be used: one early mistake then spoils the rest, which teacher forcing hides.

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

from .data import IGNORE
from .model import generate

# The number the example is judged by (PAPER.md), and the value train() returns.
HEADLINE_METRIC = "seq_acc"
HEADLINE_MODE = "max"  # higher is better: best.pt and the sweep summaries rank by it


@dataclass
class LossConfig:
    """The keys of configs/loss/*.yaml and their types (see configs/schema.py)."""

    label_smoothing: float = MISSING


def token_nll(logits: torch.Tensor, targets: torch.Tensor):
    """Negative log-likelihood per position [B, T] and the mask of counted ones."""
    counted = targets != IGNORE
    log_probs = logits.log_softmax(dim=-1)  # stable: never exp() raw logits
    # gather needs a valid index everywhere; ignored positions are masked out below.
    safe_targets = targets.masked_fill(~counted, 0)
    nll = -log_probs.gather(-1, safe_targets.unsqueeze(-1)).squeeze(-1)
    return nll * counted, counted


def loss_fn(logits: torch.Tensor, batch: dict[str, torch.Tensor], cfg) -> torch.Tensor:
    """Mean NLL over counted tokens of the batch: a scalar to minimise.

    With ``cfg.label_smoothing`` = e > 0 the target is (1 - e) on the true token and
    e spread evenly over the vocabulary (Vaswani et al. 2017 used e = 0.1): the loss
    becomes (1 - e) * NLL + e * mean over tokens of -log p(token).
    """
    nll, counted = token_nll(logits, batch["targets"])
    if cfg.label_smoothing:
        uniform_nll = -logits.log_softmax(dim=-1).mean(dim=-1) * counted
        nll = (1 - cfg.label_smoothing) * nll + cfg.label_smoothing * uniform_nll
    return nll.sum() / counted.sum()


def metrics_fn(model, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-example metrics of ``model`` on ``batch``, each of shape [B].

    Evaluation averages them over the split; the caller sets eval mode and no_grad.
    """
    logits = model(batch["inputs"])
    targets = batch["targets"]
    nll, counted = token_nll(logits, targets)
    n_counted = counted.sum(dim=1)
    correct = (logits.argmax(dim=-1) == targets) & counted
    return {
        "loss": nll.sum(dim=1) / n_counted,
        "token_acc": correct.sum(dim=1) / n_counted,
        # A sequence is right only if every answer token is right.
        "seq_acc": (correct.sum(dim=1) == n_counted).float(),
    }


def memorised(model, batch: dict[str, torch.Tensor]) -> bool:
    """The overfit checks' pass condition: every sequence of the batch exactly right
    and every example's loss near zero."""
    with torch.no_grad():
        metrics = metrics_fn(model, batch)
    return bool(metrics["seq_acc"].min() == 1 and metrics["loss"].max() < 0.01)


def expected_loss_at_init(data_spec: dict[str, int], batch, cfg) -> float:
    """Loss of a uniform guess over the vocabulary: what an untrained model should show."""
    return math.log(data_spec["vocab_size"])


def generated_answers(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The answers the model writes from each prompt (the source and the separator)
    with greedy decoding, and the true answers, [N, L] each."""
    answer = batch["targets"] != IGNORE  # the same positions in every example
    length = int(answer[0].sum())
    prompt = batch["inputs"][:, : batch["inputs"].size(1) - length + 1]
    written = generate(model, prompt, length)[:, prompt.size(1) :]
    return written, batch["targets"][answer].view(-1, length)


def split_metrics(model, split: dict[str, torch.Tensor], cfg) -> dict[str, float]:
    """Sequence accuracy when the model writes each answer itself (greedy, from the
    prompt alone): a split-level number because it needs the model to generate,
    one forward pass per answer token (~L times an evaluation pass)."""
    written, true = generated_answers(model, split)
    return {"generated_seq_acc": (written == true).all(dim=1).float().mean().item()}


def summarise(model, splits, run_dir: Path, n_examples: int = 8) -> dict[str, float]:
    """After training: write a few validation answers the model generates from the
    prompt alone to ``predictions.txt``.

    Reading raw outputs catches what averages hide (an off-by-one shift, a copied
    instead of reversed answer, one symbol always wrong)."""
    batch = {name: tensor[:n_examples] for name, tensor in splits["val"].items()}
    written, true = generated_answers(model, batch)
    lines = ["source | target | generated"]
    length = written.size(1)
    for prompt, target, answer in zip(batch["inputs"], true, written, strict=True):
        lines.append(f"{prompt[:length].tolist()} | {target.tolist()} | {answer.tolist()}")
    (Path(run_dir) / "predictions.txt").write_text("\n".join(lines) + "\n")
    return {}
