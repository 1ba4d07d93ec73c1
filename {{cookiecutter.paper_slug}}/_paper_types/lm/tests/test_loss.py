"""Loss (phase 3): known values, agreement with PyTorch, the memorised condition,
the n-gram baselines by hand, the samples."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from {{ cookiecutter.package_name }}.loss import (
    LossConfig,
    baselines,
    loss_fn,
    memorised,
    metrics_fn,
    ngram_bpc,
    summarise,
)

PLAIN = LossConfig(baseline_add_k=0.5)


def test_known_values():
    targets = torch.tensor([[2, 0, 4]])
    batch = {"targets": targets}
    uniform = torch.zeros(1, 3, 5)
    assert loss_fn(uniform, batch, PLAIN).item() == pytest.approx(math.log(5))
    m = metrics_fn(lambda inputs: uniform, {"inputs": None, **batch})
    assert m["bpc"].item() == pytest.approx(math.log2(5))  # nats / ln 2
    # The logits at position t score targets[t] itself: no second shift in the loss.
    confident = F.one_hot(targets, 5).float() * 60 - 30
    assert loss_fn(confident, batch, PLAIN).item() == pytest.approx(0.0, abs=1e-6)
    m = metrics_fn(lambda inputs: confident, {"inputs": None, **batch})
    assert m["token_acc"].item() == 1.0 and m["bpc"].item() == pytest.approx(0.0, abs=1e-6)


def test_equals_cross_entropy_and_per_window_metrics_average_to_it():
    torch.manual_seed(0)
    logits = torch.randn(4, 6, 7)
    targets = torch.randint(7, (4, 6))
    expected = F.cross_entropy(logits.reshape(-1, 7), targets.reshape(-1))
    assert loss_fn(logits, {"targets": targets}, PLAIN).item() == pytest.approx(expected.item())
    m = metrics_fn(lambda inputs: logits, {"inputs": None, "targets": targets})
    assert all(values.shape == (4,) for values in m.values())
    # Windows of equal length: the mean of the per-window means is the mean per character.
    assert m["loss"].mean().item() == pytest.approx(expected.item())
    assert m["bpc"].mean().item() == pytest.approx(expected.item() / math.log(2))


class Oracle(torch.nn.Module):
    """Logits [B, T, V] that put all weight on fixed ``answers`` [B, T]."""

    def __init__(self, answers: torch.Tensor, vocab_size: int):
        super().__init__()
        self.answers, self.vocab_size = answers, vocab_size

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return F.one_hot(self.answers, self.vocab_size).float() * 60 - 30


def test_memorised_asks_for_the_determined_positions_only(model, batch, data_spec):
    v = data_spec["vocab_size"]
    model.eval()
    assert not memorised(model, batch), "an untrained model counts as having memorised"
    assert memorised(Oracle(batch["targets"], v), batch)
    # Two windows that read the same and then differ: neither can be right at the
    # position where they part, so that position is not asked for; every other is.
    inputs = torch.tensor([[1, 2, 3], [1, 2, 3]])
    targets = torch.tensor([[2, 3, 4], [2, 3, 5]])
    pair = {"inputs": inputs, "targets": targets}
    assert memorised(Oracle(targets[:1].expand(2, 3), v), pair)
    wrong = targets[:1].expand(2, 3).clone()
    wrong[:, 1] = 0  # a determined position wrong in both windows
    assert not memorised(Oracle(wrong, v), pair)


def test_ngram_baselines_by_hand():
    # Training text "abab": unigram counts a: 2, b: 2; pairs ab: 2, ba: 1 (V = 3,
    # with "c" never seen), k = 0.5.
    unigram = torch.tensor([2.0, 2.0, 0.0])
    bigram = torch.tensor([[0.0, 2.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    inputs, targets = torch.tensor([[0, 1]]), torch.tensor([[1, 2]])  # "ab" -> "bc"
    bits = ngram_bpc(unigram, bigram, 0.5, inputs, targets)
    # p(b) = 2.5 / 5.5, p(c) = 0.5 / 5.5;  p(b | a) = 2.5 / 3.5, p(c | b) = 0.5 / 2.5.
    unigram_bits = -(math.log2(2.5 / 5.5) + math.log2(0.5 / 5.5)) / 2
    bigram_bits = -(math.log2(2.5 / 3.5) + math.log2(0.5 / 2.5)) / 2
    assert bits == pytest.approx({"unigram": unigram_bits, "bigram": bigram_bits})


def test_the_baselines_are_what_a_model_of_the_text_beats(cfg, splits):
    # On real text: which character follows which tells more than how often each
    # occurs, and both are far better than a uniform guess over the vocabulary.
    found = baselines(splits["val"], cfg)
    assert set(found) == {"unigram", "bigram"}
    assert found["bigram"]["bpc"] < found["unigram"]["bpc"] - 0.5
    assert found["unigram"]["bpc"] < math.log2(97) - 1


def test_summary_writes_samples(model, splits, tmp_path):
    model.eval()
    val = {name: tensor[:8] for name, tensor in splits["val"].items()}
    with torch.no_grad():
        assert summarise(model, {"val": val}, tmp_path, n_prompts=2, n_chars=8) == {}
    text = (tmp_path / "samples.txt").read_text()
    assert text.count("=== prompt") == 2 and "--- greedy ---" in text
