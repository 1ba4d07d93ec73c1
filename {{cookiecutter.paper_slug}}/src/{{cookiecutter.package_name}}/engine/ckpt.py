"""Checkpoint I/O: plain state dicts, written atomically, loaded with weights_only.

A checkpoint holds only tensors and plain data (dicts, lists, numbers, strings), so
``torch.load(path, weights_only=True)`` can read it and nothing in it can run code
when it is loaded. The resolved config travels with the weights: evaluation rebuilds
the exact model and data that training used without guessing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

# Written into every checkpoint so that a file from another project (or another
# version of this layout) is rejected with a clear message instead of a KeyError.
FORMAT = "{{ cookiecutter.package_name }}/checkpoint-v1"


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be used; the message says which and why."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` so that a crash never leaves a half-written file.

    The bytes go to a temporary file in the same directory, are flushed to disk,
    and only then replace the old checkpoint in one atomic rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save({"format": FORMAT, **state}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path, map_location="cpu") -> dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint``; raise CheckpointError if unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated, not a torch file, or pickles objects
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise CheckpointError(
            f"checkpoint {path} could not be read (truncated, or not a plain "
            f"weights file): {type(err).__name__}: {first_line}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"checkpoint {path} has format {found!r}, expected {FORMAT!r}: "
            "it was not written by this project's train.py"
        )
    return state
