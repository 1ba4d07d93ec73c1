"""engine/tokens.py: a token stream's windows, training batches of random windows
resumed exactly, and the positions of a batch of windows that its inputs
determine (what a sequence model can memorise)."""

from __future__ import annotations

import pytest
import torch

from {{ cookiecutter.package_name }}.engine.batches import (
    first,
)
from {{ cookiecutter.package_name }}.engine.tokens import (
    RandomWindows,
    TokenWindows,
    determined_positions,
)

STREAM = torch.arange(100) % 7 * 3 + torch.arange(100) // 7  # 100 tokens, no period of 1


def test_a_window_s_targets_are_its_inputs_one_token_on():
    windows = TokenWindows(STREAM, length=8, stride=1)
    assert len(windows) == 100 - 8
    for i in (0, 41, len(windows) - 1):
        window = windows[i]
        assert torch.equal(window["inputs"], STREAM[i : i + 8])
        assert torch.equal(window["targets"], STREAM[i + 1 : i + 9])
    with pytest.raises(IndexError):
        windows[len(windows)]


def test_fixed_windows_cover_the_stream_once_without_copying_it():
    windows = TokenWindows(STREAM, length=8, stride=8)
    held = windows.tensors()
    assert held["inputs"].shape == (len(windows), 8) == (12, 8)  # (100 - 1) // 8 windows
    assert torch.equal(held["inputs"].flatten(), STREAM[:96])
    assert torch.equal(held["targets"].flatten(), STREAM[1:97])
    assert all(torch.equal(held["inputs"][i], windows[i]["inputs"]) for i in range(len(windows)))
    assert held["inputs"].untyped_storage().data_ptr() == STREAM.untyped_storage().data_ptr()


def test_a_stream_too_short_for_one_window_is_refused_with_what_to_change():
    with pytest.raises(ValueError, match="lower the window length"):
        TokenWindows(STREAM[:8], length=8)
    with pytest.raises(ValueError, match="1-D tensor of token ids"):
        TokenWindows(STREAM.float(), length=8)


def test_random_windows_are_windows_of_the_stream_and_resume_from_the_generator():
    windows = TokenWindows(STREAM, length=8, stride=1)
    generator = torch.Generator().manual_seed(0)
    batches = RandomWindows(windows, 16, generator)
    global_state = torch.get_rng_state()
    first = next(batches)
    saved = generator.get_state()
    expected = [next(batches) for _ in range(3)]
    assert torch.equal(torch.get_rng_state(), global_state), "drew from the global generator"
    for row_in, row_out in zip(first["inputs"], first["targets"], strict=True):
        start = int((STREAM.unfold(0, 8, 1) == row_in).all(dim=1).nonzero()[0])
        assert torch.equal(row_out, STREAM[start + 1 : start + 9])
    # A resumed run restores the data generator (the checkpoint's rng states): the
    # stream has no other state, and draws the same windows.
    resumed_generator = torch.Generator().manual_seed(123)
    resumed = RandomWindows(windows, 16, resumed_generator)
    resumed_generator.set_state(saved)
    for a, b in zip(expected, [next(resumed) for _ in range(3)], strict=True):
        assert torch.equal(a["inputs"], b["inputs"]) and torch.equal(a["targets"], b["targets"])
    starts = {tuple(row.tolist()) for batch in expected for row in batch["inputs"]}
    assert len(starts) > 30, "the windows do not move through the stream"


def test_determined_positions_are_those_the_inputs_so_far_single_out():
    text = "the cat. the dog. the cow."
    stream = torch.tensor([ord(c) for c in text])
    held = TokenWindows(stream, length=5).tensors()
    pick = torch.tensor([0, 9, 18])  # "the c" -> a, "the d" -> o, "the c" -> o
    inputs, targets = held["inputs"][pick], held["targets"][pick]
    determined = determined_positions(inputs, targets)
    # "t", "th", "the" are followed by the same letter in all three; after "the "
    # comes c, d or c; after "the c", a or o; after "the d" only o.
    expected = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 0, 1], [1, 1, 1, 0, 0]]).bool()
    assert torch.equal(determined, expected)
    assert determined_positions(inputs[:1], targets[:1]).all(), "one window: every position"
    # The whole prefix counts, not the last token: after "xab" and "yab" come c and d,
    # both determined by their first letter although both read "b" last.
    two = torch.tensor([[ord(c) for c in "xab"], [ord(c) for c in "yab"]])
    after = torch.tensor([[ord(c) for c in "abc"], [ord(c) for c in "abd"]])
    assert determined_positions(two, after).all()
    # Blind inputs (zeros) single nothing out, yet the targets asked for are the true
    # ones: a zeroed-input model cannot meet a memorised() built on the true batch.
    zeros = torch.zeros_like(inputs)
    assert determined_positions(zeros, targets).sum() < determined.sum()


def test_the_first_windows_are_windows_of_a_shorter_stream():
    windows = TokenWindows(STREAM, length=8, stride=1)
    head = first(windows, 10)
    assert isinstance(head, TokenWindows) and len(head) == 10
    assert all(torch.equal(head[i]["targets"], windows[i]["targets"]) for i in range(10))
    batch = next(RandomWindows(head, 64, torch.Generator().manual_seed(0)))
    allowed = {tuple(window.tolist()) for window in windows.tensors()["inputs"][:10]}
    assert {tuple(row.tolist()) for row in batch["inputs"]} <= allowed, "drew past window 10"
    assert len(first(TokenWindows(STREAM, 8, stride=8), 3)) == 3
