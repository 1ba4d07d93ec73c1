"""Loss and metrics of a character-level language model, and its baselines.

Every reduction is written out:
- ``loss`` is the mean negative log-likelihood, in nats, over every position of
  every window in the batch (each position predicts the character after it);
- ``bpc`` (bits per character, the headline) is the same NLL in bits: nats / ln 2.
  Every window has the same length, so the mean of the per-window means
  (evaluation's average) is the mean over every scored character of the split;
- ``token_acc``: the share of positions whose most likely next character is right.

The baselines (``baselines``) need no model: a unigram and a bigram model of the
training stream, add-k smoothed (``loss.baseline_add_k``) so that a character or a
pair never seen in training costs a finite number of bits, scored on the split's
windows' targets exactly as the model is (the bigram conditions each target on the
input character at the same position: the character before it). A language model
that does not beat the bigram has learnt little more than which letter follows
which; the reference run beats it by more than a bit per character.

Contract shared with the rest of the package (every paper type provides it):
``loss_fn``, ``metrics_fn``, ``split_metrics``, ``HEADLINE_METRIC``,
``expected_loss_at_init``, ``memorised``, ``summarise`` and ``baselines``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from omegaconf import MISSING

from .data import VOCABULARY, decode, split_streams
from .engine.tokens import determined_positions
from .model import generate

# The number the example is judged by (PAPER.md), and the value train() returns.
HEADLINE_METRIC = "bpc"
HEADLINE_MODE = "min"  # lower is better: best.pt and the sweep summaries rank by it

# memorised(): the most NLL (nats) a window's determined positions may keep on
# average: 0.05 is a geometric-mean probability of 0.95 on the right characters.
MEMORISED_NLL = 0.05


@dataclass
class LossConfig:
    """The keys of configs/loss/*.yaml and their types (see configs/schema.py)."""

    baseline_add_k: float = MISSING  # add-k smoothing of the n-gram baselines


def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood in nats per position [B, T]."""
    log_probs = logits.log_softmax(dim=-1)  # stable: never exp() raw logits
    return -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def loss_fn(logits: torch.Tensor, batch: dict[str, torch.Tensor], cfg) -> torch.Tensor:
    """Mean NLL (nats) over every position of the batch: a scalar to minimise."""
    return token_nll(logits, batch["targets"]).mean()


def metrics_fn(model, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-window metrics of ``model`` on ``batch``, each of shape [B].

    Evaluation averages them over the split; the caller sets eval mode and no_grad.
    """
    logits = model(batch["inputs"])
    targets = batch["targets"]
    nll = token_nll(logits, targets).mean(dim=1)
    return {
        "loss": nll,
        "bpc": nll / math.log(2),
        "token_acc": (logits.argmax(dim=-1) == targets).float().mean(dim=1),
    }


def memorised(model, batch: dict[str, torch.Tensor]) -> bool:
    """The overfit checks' pass condition: at every position the windows' own text
    determines (engine/tokens.py: determined_positions, from the true inputs and
    targets), the most likely character is the target, and each window's mean NLL
    over those positions is below MEMORISED_NLL. Positions where two windows share
    everything before and differ after cannot both be right, and are not asked for.
    An untrained model fails: its argmax is right by chance only."""
    determined = determined_positions(batch["inputs"], batch["targets"])
    with torch.no_grad():
        logits = model(batch["inputs"])
    targets = batch["targets"]
    right = (logits.argmax(dim=-1) == targets) | ~determined
    nll = token_nll(logits, targets) * determined
    per_window = nll.sum(dim=1) / determined.sum(dim=1).clamp(min=1)
    return bool(right.all() and per_window.max() < MEMORISED_NLL)


def expected_loss_at_init(data_spec: dict[str, int], batch, cfg) -> float:
    """Loss of a uniform guess over the vocabulary: what an untrained model should
    show (its logits are near zero: weights of std 0.02 and a tied head give logits
    of std ~0.02 sqrt(C), which adds ~(0.02^2 C) / 2 nats: 0.03 at C = 128)."""
    return math.log(data_spec["vocab_size"])


def split_metrics(model, split: dict[str, torch.Tensor], cfg) -> dict[str, float]:
    """Nothing beyond the per-window means: bpc is a mean over characters already.
    The baselines are model-free (``baselines``), the samples in ``summarise``."""
    return {}


# --- Baselines ----------------------------------------------------------------------


@lru_cache(maxsize=4)
def training_counts(
    cache_dir: str, seed: int, val_chars: int, test_chars: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Character counts [V] and pair counts [V, V] (previous, next) of the training
    stream, computed once per data config: every validation needs them. Keyed on
    the values that choose the training stream (not context_length: the stream
    does not depend on it)."""
    cfg = _DataKeys(cache_dir, seed, val_chars, test_chars)
    train = split_streams(cfg)["train"]
    v = len(VOCABULARY)
    unigram = torch.bincount(train, minlength=v).double()
    bigram = torch.bincount(train[:-1] * v + train[1:], minlength=v * v).double().view(v, v)
    return unigram, bigram


@dataclass(frozen=True)
class _DataKeys:
    """The data config's values that choose the corpus and its splits."""

    cache_dir: str
    seed: int
    val_chars: int
    test_chars: int


def ngram_bpc(
    unigram: torch.Tensor,
    bigram: torch.Tensor,
    k: float,
    inputs: torch.Tensor,
    targets: torch.Tensor,
) -> dict[str, float]:
    """Bits per character of add-k smoothed unigram and bigram models with counts
    ``unigram`` [V] and ``bigram`` [V, V] (previous, next) on ``targets``, the
    bigram conditioning each target on ``inputs`` at the same position (the
    character before it): p(c) = (n(c) + k) / (N + kV) and
    p(c | b) = (n(b, c) + k) / (n(b) + kV)."""
    v = len(unigram)
    p_unigram = (unigram + k) / (unigram.sum() + k * v)
    p_bigram = (bigram + k) / (bigram.sum(dim=1, keepdim=True) + k * v)
    return {
        "unigram": float(-p_unigram[targets].log2().mean()),
        "bigram": float(-p_bigram[inputs, targets].log2().mean()),
    }


def baselines(split: dict[str, torch.Tensor], cfg) -> dict[str, dict[str, float]]:
    """Bits per character of a unigram and a bigram model of the training stream
    (``ngram_bpc``, add-k with k = ``cfg.loss.baseline_add_k``) on the split's
    windows' targets, the same windows and positions the model is scored on."""
    data = cfg.data
    unigram, bigram = training_counts(
        str(data.cache_dir), int(data.seed), int(data.val_chars), int(data.test_chars)
    )
    bits = ngram_bpc(
        unigram, bigram, cfg.loss.baseline_add_k, split["inputs"].cpu(), split["targets"].cpu()
    )
    return {name: {"bpc": value} for name, value in bits.items()}


# --- After training -----------------------------------------------------------------


def summarise(model, splits, run_dir: Path, n_prompts: int = 4, n_chars: int = 200):
    """After training: ``samples.txt``, a few validation windows' first characters
    continued by the model, sampled at temperature 0.8 (a fixed-seed generator: the
    same draws every run) and greedily.

    Reading samples catches what bpc hides: a model that repeats one phrase, one
    that never ends a docstring, text that stops making sense after the context
    length (positions beyond what it was trained on)."""
    val = splits["val"]["inputs"]
    prompt_length = min(32, val.size(1))
    prompts = val[:: max(1, len(val) // n_prompts)][:n_prompts, :prompt_length]
    generator = torch.Generator().manual_seed(0)
    sampled = generate(model, prompts, n_chars, generator, temperature=0.8)
    greedy = generate(model, prompts, n_chars)
    lines = []
    for i, prompt in enumerate(prompts):
        lines += [
            f"=== prompt {i} (validation) ===",
            decode(prompt),
            "--- sampled, temperature 0.8 ---",
            decode(sampled[i, prompt_length:]),
            "--- greedy ---",
            decode(greedy[i, prompt_length:]),
            "",
        ]
    (Path(run_dir) / "samples.txt").write_text("\n".join(lines))
    return {}
