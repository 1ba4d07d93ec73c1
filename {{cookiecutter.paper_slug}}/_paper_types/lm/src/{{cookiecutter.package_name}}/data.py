"""Data: character-level language modelling on the standard library's docstrings.

A corpus every Python installation already has: the docstrings of the standard
library's own source. ``build_corpus`` walks the library's directory
(``sysconfig.get_paths()["stdlib"]``), parses each ``.py`` file with ``ast`` (no
module is ever imported: importing runs code, and some modules only exist on one
platform) and collects the docstring of every module, class and function.

- **Skipped** (``SKIPPED_DIRS``): ``site-packages`` / ``dist-packages`` (what the
  user installed, not the library), every ``test`` / ``tests`` / ``idle_test``
  folder, and the parts that Linux distributions ship as separate packages or drop
  (``idlelib``, ``lib2to3``, ``distutils``, ``tkinter``, ``turtledemo``,
  ``ensurepip``): with them the corpus of one Python version would differ between
  a python.org build and a Debian one. ``_sysconfigdata_*.py`` describes the build
  itself (paths, compiler flags), not the library.
- **Characters**: a fixed vocabulary, ``VOCABULARY``: the 95 printable ASCII
  characters, the newline, and ``SEPARATOR`` between documents. Docstrings are
  read with ``ast.get_docstring`` (indentation removed, tabs expanded); accented
  letters lose their accents (Unicode NFKD: "naïve" -> "naive") and any other
  character outside the vocabulary (box drawing, Greek, emoji: ~30 in all of
  CPython 3.11) is dropped and counted (``dropped_characters`` in the JSON).
- **Documents**: identical docstrings are kept once (``__init__`` of many classes
  says "Initialize self."), so no text can be in two splits by being in two files;
  the files are read in sorted order, so the corpus depends only on the Python
  version and ``data.seed``, which shuffles the documents before they are joined.
- **Splits**: contiguous blocks of that one stream, cut at document boundaries:
  train, then val (at least ``data.val_chars`` characters), then test (at least
  ``data.test_chars``). A document is in exactly one split, and no val or test
  character is inside a training window (``engine/tokens.py``).

The corpus is built once (~5 s on one core) and cached outside the package, in
``data.cache_dir``: the text itself (plain ASCII, readable with any editor) and a
JSON of where it came from (source directory, Python version, files, docstrings,
characters, sha256). Both are written atomically (a temporary file renamed into
place), so a run killed mid-write or two sweep jobs building at once never leave a
half-written corpus that the next run would trust; a cache whose sha256 does not
match its JSON is rebuilt.

Contract shared with the rest of the package (every paper type provides it):
``spec``, ``build_splits``, ``train_batches``, ``overfit_batch``, ``batch_layout``
and ``DataConfig``.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import platform
import sysconfig
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import MISSING

from .engine.tokens import RandomWindows, TokenWindows

SPLITS = ("train", "val", "test")

# ASCII's own record separator: a character no docstring contains, so it marks
# document boundaries without being confused with text.
SEPARATOR = "\x1e"
VOCABULARY = SEPARATOR + "\n" + "".join(chr(code) for code in range(32, 127))
# Byte value -> token id, for bytes.translate (every character is one ASCII byte).
_TO_ID = bytes(VOCABULARY.index(chr(b)) if chr(b) in VOCABULARY else 0 for b in range(256))

# Folders never read, at any depth (see the module docstring for why).
SKIPPED_DIRS = frozenset(
    {
        "site-packages",
        "dist-packages",
        "test",
        "tests",
        "idle_test",
        "idlelib",
        "lib2to3",
        "distutils",
        "tkinter",
        "turtledemo",
        "ensurepip",
        "__pycache__",
    }
)


@dataclass
class DataConfig:
    """The keys of configs/data/*.yaml and their types (see configs/schema.py)."""

    cache_dir: str = MISSING  # where the corpus is written once and read afterwards
    seed: int = MISSING  # the order of the documents: fixed while the training seed varies
    context_length: int = MISSING  # T: characters per window
    val_chars: int = MISSING
    test_chars: int = MISSING


def spec(cfg) -> dict[str, int]:
    """Sizes derived from the data config that the model must agree with."""
    return {"vocab_size": len(VOCABULARY), "context_length": cfg.context_length}


# --- Building the corpus ----------------------------------------------------------


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def source_files(root: Path) -> list[Path]:
    """The ``.py`` files under ``root`` outside the skipped folders, sorted by their
    path relative to ``root`` (os.walk's order depends on the file system)."""
    files = []
    for directory, subdirs, names in os.walk(root):
        # Pruned in place so os.walk never enters them; config-3.x-<platform> holds
        # the build's Makefile and scripts.
        subdirs[:] = [d for d in subdirs if d not in SKIPPED_DIRS and not d.startswith("config-")]
        files += [
            Path(directory) / name
            for name in names
            if name.endswith(".py") and not name.startswith("_sysconfigdata")
        ]
    return sorted(files, key=lambda path: path.relative_to(root).as_posix())


def to_vocabulary(text: str) -> tuple[str, int]:
    """``text`` in VOCABULARY's characters, and how many characters were dropped.
    NFKD splits an accented letter into the letter and its accent; the accent, like
    every other character outside the vocabulary, is then dropped."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(c for c in decomposed if c in VOCABULARY and c != SEPARATOR)
    dropped = sum(1 for c in decomposed if not unicodedata.combining(c)) - len(kept)
    return kept, dropped


def docstrings(files: list[Path]) -> tuple[list[str], dict[str, int]]:
    """Every distinct module, class and function docstring of ``files``, in file
    order and, within a file, in ast.walk's order; and counts for the JSON."""
    documents, seen = [], set()
    counts = {"files": 0, "unparsable_files": 0, "docstrings": 0, "dropped_characters": 0}
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    for path in files:
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (SyntaxError, ValueError):  # a file for another Python version, or bad bytes
            counts["unparsable_files"] += 1
            continue
        counts["files"] += 1
        for node in ast.walk(tree):
            if not isinstance(node, kinds) or not (doc := ast.get_docstring(node)):
                continue
            counts["docstrings"] += 1
            text, dropped = to_vocabulary(doc)
            counts["dropped_characters"] += dropped
            # Deduplicated after mapping, so two docstrings that differ only in a
            # dropped character are one document too.
            if text.strip() and text not in seen:
                seen.add(text)
                documents.append(text)
    return documents, counts


def build_corpus(root: Path, seed: int) -> tuple[str, dict]:
    """The corpus text (documents shuffled with ``seed``, each followed by SEPARATOR)
    and its facts for the JSON beside the cache."""
    start = time.perf_counter()
    documents, counts = docstrings(source_files(root))
    order = torch.randperm(len(documents), generator=torch.Generator().manual_seed(seed))
    text = "".join(documents[i] + SEPARATOR for i in order.tolist())
    facts = {
        "source": str(root),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "skipped_dirs": sorted(SKIPPED_DIRS),
        "seed": seed,
        **counts,
        "documents": len(documents),
        "characters": len(text),
        "sha256": hashlib.sha256(text.encode("ascii")).hexdigest(),
        "build_seconds": round(time.perf_counter() - start, 2),
    }
    return text, facts


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the whole new
    one, never a part: a temporary file in the same folder, renamed over it."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)  # atomic on POSIX and Windows
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def cache_paths(cfg) -> tuple[Path, Path]:
    """The cached corpus and its JSON: one per Python version (its library is the
    source) and document order."""
    folder = Path(cfg.cache_dir).expanduser()
    stem = f"stdlib_docs-py{platform.python_version()}-seed{cfg.seed}"
    return folder / f"{stem}.txt", folder / f"{stem}.json"


def load_corpus(cfg, root: Path | None = None) -> str:
    """The corpus text: read from the cache when it is there and its sha256 is the
    one its JSON records, else built from ``root`` (the standard library) and cached."""
    text_path, facts_path = cache_paths(cfg)
    if text_path.is_file() and facts_path.is_file():
        data = text_path.read_bytes()
        facts = json.loads(facts_path.read_text())
        if hashlib.sha256(data).hexdigest() == facts.get("sha256"):
            return data.decode("ascii")
    text, facts = build_corpus(root or stdlib_dir(), cfg.seed)
    text_path.parent.mkdir(parents=True, exist_ok=True)
    # The text first: a JSON only ever describes a text already in place.
    write_atomically(text_path, text.encode("ascii"))
    write_atomically(facts_path, (json.dumps(facts, indent=2) + "\n").encode())
    return text


def encode(text: str) -> torch.Tensor:
    """Token ids [len(text)] (int64, what nn.Embedding takes) of an ASCII text."""
    if not text:  # frombuffer refuses an empty buffer
        return torch.empty(0, dtype=torch.long)
    ids = bytearray(text.encode("ascii").translate(_TO_ID))
    return torch.frombuffer(ids, dtype=torch.uint8).long()


def decode(ids) -> str:
    """The text of token ids; SEPARATOR shown as a line of its own, ``---``."""
    text = "".join(VOCABULARY[i] for i in torch.as_tensor(ids).tolist())
    return text.replace(SEPARATOR, "\n---\n")


# --- Splits and batches -----------------------------------------------------------


def split_bounds(text: str, val_chars: int, test_chars: int) -> tuple[int, int]:
    """Where val and test start: each at a document's start (just after a
    SEPARATOR), test holding the fewest last documents that make at least
    ``test_chars`` characters (separators included) and val the fewest before it
    that make at least ``val_chars``."""
    test_start = text.rfind(SEPARATOR, 0, len(text) - test_chars) + 1
    val_start = text.rfind(SEPARATOR, 0, test_start - val_chars) + 1
    if val_start <= 0:  # rfind found nothing: not enough documents for train
        raise ValueError(
            f"a corpus of {len(text)} characters cannot give {val_chars} validation and "
            f"{test_chars} test characters and still leave documents to train on: "
            "lower data.val_chars or data.test_chars"
        )
    return val_start, test_start


def split_streams(cfg, root: Path | None = None) -> dict[str, torch.Tensor]:
    """The three splits as token streams: contiguous blocks of the corpus."""
    text = load_corpus(cfg, root)
    val_start, test_start = split_bounds(text, cfg.val_chars, cfg.test_chars)
    stream = encode(text)
    return {
        "train": stream[:val_start],
        "val": stream[val_start:test_start],
        "test": stream[test_start:],
    }


def build_splits(cfg) -> dict:
    """Train: every window of the training stream (a Dataset; training draws them at
    random starts). Val and test: non-overlapping windows held as tensors, so every
    character of the split (but the tail shorter than a window) is scored once, the
    same way at every evaluation."""
    streams = split_streams(cfg)
    length = cfg.context_length
    return {
        "train": TokenWindows(streams["train"], length, stride=1),
        "val": TokenWindows(streams["val"], length, stride=length).tensors(),
        "test": TokenWindows(streams["test"], length, stride=length).tensors(),
    }


def batch_layout(data_spec) -> dict[str, tuple[tuple, torch.dtype]]:
    """Per key of a training batch: its shape ("batch" for the batch dimension)
    and dtype. The generic tests hold every batch train_batches draws to it."""
    length = data_spec["context_length"]
    return {
        "inputs": (("batch", length), torch.long),
        "targets": (("batch", length), torch.long),
    }


def train_batches(cfg, split, batch_size: int, generator: torch.Generator, model=None):
    """Endless batches of windows at random starts of the training stream, drawn
    from ``generator`` alone (its state is the whole state of the stream: a resumed
    run draws the same windows) and gathered onto the model's device."""
    device = next(model.parameters()).device if model is not None else None
    return RandomWindows(split, batch_size, generator, device)


def overfit_batch(cfg, split, n: int, generator: torch.Generator, model=None):
    """``n`` windows for the overfit checks (tests/test_overfit.py and the
    gauntlet): a batch exactly as training draws it. Windows that begin alike and
    then differ cannot all be predicted at every position: loss.memorised asks for
    the positions that the windows' own text determines (engine/tokens.py:
    determined_positions)."""
    return next(train_batches(cfg, split, n, generator, model))
