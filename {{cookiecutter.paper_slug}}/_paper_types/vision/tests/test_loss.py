"""Loss (phase 3): known values and agreement with PyTorch's cross-entropy."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from {{ cookiecutter.package_name }}.loss import (
    LossConfig,
    loss_fn,
    metrics_fn,
    split_metrics,
    summarise,
)

PLAIN = LossConfig(label_smoothing=0.0)


def test_known_values():
    batch = {"inputs": None, "targets": torch.tensor([2, 0])}
    uniform = torch.zeros(2, 4)
    assert loss_fn(uniform, batch, PLAIN).item() == pytest.approx(math.log(4))
    confident = torch.full((2, 4), -30.0)
    confident[0, 2] = confident[1, 0] = 30.0
    assert loss_fn(confident, batch, PLAIN).item() == pytest.approx(0.0, abs=1e-6)
    wrong_second = confident.clone()
    wrong_second[1] = torch.tensor([-30.0, 30.0, -30.0, -30.0])
    metrics = metrics_fn(lambda inputs: wrong_second, batch)
    assert metrics["acc"].tolist() == [1.0, 0.0]
    assert metrics["loss"][1].item() == pytest.approx(60.0, rel=1e-4)


def test_equals_cross_entropy():
    torch.manual_seed(0)
    logits = 5 * torch.randn(16, 10)
    targets = torch.randint(10, (16,))
    expected = F.cross_entropy(logits, targets)
    assert loss_fn(logits, {"targets": targets}, PLAIN).item() == pytest.approx(
        expected.item(), rel=1e-6
    )
    smoothed = F.cross_entropy(logits, targets, label_smoothing=0.1)
    ours = loss_fn(logits, {"targets": targets}, LossConfig(label_smoothing=0.1))
    assert ours.item() == pytest.approx(smoothed.item(), rel=1e-6)


def test_summary_writes_the_confusion_matrix(model, splits, tmp_path):
    model.eval()
    with torch.no_grad():
        summary = summarise(model, splits, tmp_path)
    rows = [
        [int(x) for x in line.split()]
        for line in (tmp_path / "confusion.txt").read_text().splitlines()
    ]
    assert len(rows) == 10 and all(len(row) == 10 for row in rows)
    targets = torch.tensor([label for _, label in splits["val"].samples])
    assert sum(map(sum, rows)) == len(targets)
    # Row sums are the class counts of the split, whatever the model predicts.
    counts = torch.bincount(targets, minlength=10).tolist()
    assert [sum(row) for row in rows] == counts
    assert summary == {}  # the worst class's accuracy is a validation metric


def test_worst_class_accuracy_by_hand():
    # Class 1 is right once in two tries, the others always: the overall accuracy
    # (5 of 6) hides it. Class 3 is not in the split: it has no accuracy (not 0).
    targets = torch.tensor([0, 0, 1, 1, 2, 4])
    predicted = torch.tensor([0, 0, 1, 0, 2, 4])
    logits = F.one_hot(predicted, 5).float()
    split = {"inputs": torch.zeros(6, 1), "targets": targets}
    assert split_metrics(lambda inputs: logits, split, cfg=None) == {"worst_class_acc": 0.5}
