"""Data (phase 1): the corpus builder, the windows, determinism, disjoint splits."""

from __future__ import annotations

import textwrap

import pytest
import torch

from {{ cookiecutter.package_name }}.data import (
    SEPARATOR,
    SPLITS,
    VOCABULARY,
    build_corpus,
    decode,
    encode,
    load_corpus,
    source_files,
    split_bounds,
    split_streams,
    to_vocabulary,
)
from {{ cookiecutter.package_name }}.engine.tokens import TokenWindows


def write_library(root, files: dict[str, str]) -> None:
    """A small stand-in for the standard library: ``{relative path: source}``."""
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")


LIBRARY = {
    "alpha.py": '''
        """Module alpha."""

        def f():
            """Return one."""
            return 1

        class Naive:
            """A na\u00efve class \u2192 with an arrow."""

            def g(self):
                """Return one."""
    ''',
    "pkg/beta.py": '''
        def h():
            """Beta's own docstring.

            Second paragraph."""
    ''',
    "pkg/tests/test_beta.py": '"""A test module: never read."""\n',
    "site-packages/third.py": '"""Installed by the user: never read."""\n',
    "broken.py": '"""Unparsable."""\ndef (:\n',
}


def test_the_builder_reads_docstrings_once_skips_tests_and_maps_characters(tmp_path):
    write_library(tmp_path, LIBRARY)
    names = [p.relative_to(tmp_path).as_posix() for p in source_files(tmp_path)]
    assert names == ["alpha.py", "broken.py", "pkg/beta.py"]  # sorted; tests, site-packages out
    text, facts = build_corpus(tmp_path, seed=0)
    documents = text.split(SEPARATOR)
    assert documents[-1] == ""  # every document, the last too, ends with the separator
    assert sorted(documents[:-1]) == sorted(
        [
            "Module alpha.",
            "Return one.",  # twice in the source, once in the corpus
            "A naive class  with an arrow.",  # accent removed, arrow dropped
            "Beta's own docstring.\n\nSecond paragraph.",  # indentation removed
        ]
    )
    assert facts["files"] == 2 and facts["unparsable_files"] == 1
    assert facts["docstrings"] == 5 and facts["documents"] == 4
    assert facts["dropped_characters"] == 1 and facts["characters"] == len(text)


def test_same_seed_same_corpus_other_seed_other_order(tmp_path):
    # The corpus depends on the files and the seed only: the same seed reads the
    # same documents in the same order; another seed, the same documents reordered.
    write_library(tmp_path, LIBRARY)
    text = build_corpus(tmp_path, seed=0)[0]
    assert build_corpus(tmp_path, seed=0)[0] == text
    orders = {build_corpus(tmp_path, seed=seed)[0] for seed in range(1, 6)}
    assert len(orders | {text}) > 1, "the seed does not change the order"
    for other in orders:
        assert sorted(other.split(SEPARATOR)) == sorted(text.split(SEPARATOR))


def test_vocabulary_is_printable_ascii_newline_and_the_separator():
    assert len(VOCABULARY) == len(set(VOCABULARY)) == 97
    assert to_vocabulary("caf\u00e9\ttab \u00df\u2014") == ("cafetab ", 3)  # tab, sharp s, dash
    text = "def f():\n    return 'x' ~ 1" + SEPARATOR
    ids = encode(text)
    assert ids.dtype == torch.long and ids.max() < len(VOCABULARY)
    assert "".join(VOCABULARY[i] for i in ids.tolist()) == text
    assert decode(ids) == text.replace(SEPARATOR, "\n---\n")


def test_splits_shapes_and_dtypes(cfg, splits, data_spec):
    length = cfg.data.context_length
    assert set(splits) == set(SPLITS) and data_spec["context_length"] == length
    train = splits["train"]
    assert isinstance(train, TokenWindows) and train.length == length and train.stride == 1
    for name in ("val", "test"):
        inputs, targets = splits[name]["inputs"], splits[name]["targets"]
        assert inputs.shape == targets.shape and inputs.shape[1] == length
        assert inputs.dtype == targets.dtype == torch.long
        assert inputs.min() >= 0 and inputs.max() < data_spec["vocab_size"]
        # At least the characters asked for, but for the tail shorter than a window.
        asked = cfg.data.val_chars if name == "val" else cfg.data.test_chars
        assert inputs.numel() > asked - length


def test_evaluation_windows_tile_their_split_without_overlap(splits):
    # Val and test windows are consecutive pieces of one stream: every character is
    # scored once, and each target is the character after its input.
    for name in ("val", "test"):
        inputs, targets = splits[name]["inputs"], splits[name]["targets"]
        stream = inputs.flatten()
        assert torch.equal(targets.flatten()[:-1], stream[1:])
        assert torch.equal(targets[:-1, -1], inputs[1:, 0])  # window i ends where i+1 starts


def test_training_batches_are_windows_of_the_training_stream(splits, draw_batch):
    # The path training takes: each row's inputs, followed by its last target, are a
    # piece of the training text (so the targets are the characters that follow).
    text = "".join(VOCABULARY[i] for i in splits["train"].stream.tolist())
    batch = draw_batch(8)
    for inputs, targets in zip(batch["inputs"], batch["targets"], strict=True):
        assert torch.equal(inputs[1:], targets[:-1])
        piece = "".join(VOCABULARY[i] for i in [*inputs.tolist(), targets[-1].item()])
        assert piece in text, "a training window is not in the training text"


def test_splits_are_contiguous_blocks_cut_between_documents(cfg):
    # train + val + test is the corpus, in order, nothing lost or repeated; each cut
    # is at a document boundary (just after a separator), so no document is in two
    # splits; val and test hold at least what the config asks.
    text = load_corpus(cfg.data)
    streams = split_streams(cfg.data)
    assert torch.equal(torch.cat([streams[name] for name in SPLITS]), encode(text))
    separator = encode(SEPARATOR).item()
    for before in ("train", "val"):
        assert streams[before][-1].item() == separator, f"{before} ends inside a document"
    assert len(streams["val"]) >= cfg.data.val_chars
    assert len(streams["test"]) >= cfg.data.test_chars
    documents = {name: set(s.split(SEPARATOR)) - {""} for name, s in _texts(streams).items()}
    assert not documents["train"] & documents["val"] and not documents["train"] & documents["test"]
    assert not documents["val"] & documents["test"]


def _texts(streams: dict[str, torch.Tensor]) -> dict[str, str]:
    return {name: "".join(VOCABULARY[i] for i in s.tolist()) for name, s in streams.items()}


def test_split_bounds_by_hand():
    # Documents "aaaa", "bb", "cc", "dddd", each followed by the separator ("|" here).
    text = "aaaa|bb|cc|dddd|".replace("|", SEPARATOR)
    val_start, test_start = split_bounds(text, val_chars=3, test_chars=5)
    assert text[test_start:] == "dddd" + SEPARATOR  # the fewest last documents: 5 >= 5
    assert text[val_start:test_start] == "cc" + SEPARATOR  # 3 >= 3
    val_start, test_start = split_bounds(text, val_chars=4, test_chars=2)
    assert text[test_start:] == "dddd" + SEPARATOR
    assert text[val_start:test_start] == "bb" + SEPARATOR + "cc" + SEPARATOR  # "cc|" is 3 < 4
    assert text[:val_start] == "aaaa" + SEPARATOR
    with pytest.raises(ValueError, match="val_chars"):
        split_bounds(text, val_chars=4, test_chars=6)  # nothing would be left to train on
