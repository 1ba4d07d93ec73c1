"""Run-time plumbing shared by every paper type: seeds, device, batching."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch; return a generator for the data order.

    Any integer is a valid seed, 0 included: never write ``if seed:``.
    The data order gets its own generator so that adding a random op to the model
    does not silently reshuffle the batches.
    """
    random.seed(seed)
    # The legacy global NumPy RNG: still what much third-party code draws from.
    np.random.seed(seed)  # noqa: NPY002
    torch.manual_seed(seed)  # seeds CUDA and MPS too
    return torch.Generator().manual_seed(seed)


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; anything else is used as is."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def shuffled_batches(split: dict[str, torch.Tensor], batch_size: int, generator: torch.Generator):
    """Endless batches from in-memory tensors, reshuffled every epoch.

    Batches are made by indexing whole tensors with a slice of a permutation: no
    per-example Python work. The ragged tail of each epoch is dropped so every step
    sees a full batch (a tiny last batch would get the same weight as a full one).
    """
    n = len(next(iter(split.values())))
    batch_size = min(batch_size, n)
    device = next(iter(split.values())).device
    while True:
        order = torch.randperm(n, generator=generator).to(device)
        for start in range(0, n - batch_size + 1, batch_size):
            index = order[start : start + batch_size]
            yield {name: tensor[index] for name, tensor in split.items()}
