"""Batches and splits: the in-memory batch stream a data.py builds on, and the
helpers every part of the harness uses to slice, move and look into batches.

A batch (or a split) is a dict whose values are tensors with the examples along
the first dimension; "inputs", what the model's forward receives, may instead be
a dict of such tensors (a conditional model's {"x_t": ..., "t": ...}, an image
and its label, tokens and their mask). These helpers treat both kinds alike.

A split too large for memory (image files, a long token stream) may instead be a
map-style ``torch.utils.data.Dataset`` whose items are such dicts for one example:
``in_order`` reads it through a DataLoader for evaluation, ``examples`` takes
some of its examples as tensors, and engine/loader.py streams it for training.
"""

from __future__ import annotations

from operator import itemgetter

import torch
from torch.utils.data import DataLoader


def map_tensors(fn, tree):
    """``tree`` with ``fn`` applied to every tensor in it (nested dicts kept)."""
    if isinstance(tree, torch.Tensor):
        return fn(tree)
    return {key: map_tensors(fn, value) for key, value in tree.items()}


def named_tensors(tree, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor in ``tree`` by its dotted name: {"inputs.t": ..., "targets": ...}."""
    if isinstance(tree, torch.Tensor):
        return {prefix: tree}
    named = {}
    for key, value in tree.items():
        named.update(named_tensors(value, f"{prefix}.{key}" if prefix else key))
    return named


def first_tensor(tree) -> torch.Tensor:
    while not isinstance(tree, torch.Tensor):
        tree = next(iter(tree.values()))
    return tree


def num_examples(tree) -> int:
    """The length of a batch or split (of its first tensor: all have the same), or
    of a Dataset split."""
    return len(first_tensor(tree)) if isinstance(tree, (dict, torch.Tensor)) else len(tree)


def in_memory(split) -> bool:
    """Whether ``split`` is tensors (sliced in place) rather than a Dataset (read)."""
    return isinstance(split, dict)


def on_device(split, device):
    """A split ready for ``device``: in-memory tensors moved there once; a Dataset
    as it is (its batches are moved as they are read)."""
    return map_tensors(lambda tensor: tensor.to(device), split) if in_memory(split) else split


def in_order(split, batch_size: int, device=None, num_workers: int = 0):
    """A split's examples in order, batch by batch, the last batch possibly smaller:
    slices of in-memory tensors (the fast path: no copies, no Python per example),
    or a Dataset read by a DataLoader with ``num_workers`` workers, each batch moved
    to ``device``."""
    if in_memory(split):
        for start in range(0, num_examples(split), batch_size):
            yield map_tensors(itemgetter(slice(start, start + batch_size)), split)
        return
    loader = DataLoader(split, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    for batch in loader:
        yield batch if device is None else map_tensors(lambda t: t.to(device), batch)


def first(split, n: int):
    """The split's first ``n`` examples, of the same kind: tensors sliced; a Dataset
    that can cut itself (a ``first(n)`` method: engine/tokens.py's TokenWindows, whose
    batches are drawn from its stream) cut; any other Dataset's Subset (read only
    when used)."""
    if in_memory(split):
        return map_tensors(lambda tensor: tensor[:n], split)
    if hasattr(split, "first"):
        return split.first(n)
    return torch.utils.data.Subset(split, range(min(n, len(split))))


def examples(split, n: int, generator: torch.Generator | None = None, device=None) -> dict:
    """``n`` examples of a split as tensors (a Dataset's read and stacked): the first
    ``n``, or ``n`` drawn without replacement with ``generator`` (files stored
    class by class make the first ones no sample of the split)."""
    size = num_examples(split)
    chosen = torch.arange(min(n, size))
    if generator is not None:
        chosen = torch.randperm(size, generator=generator)[:n]
    if in_memory(split):
        return map_tensors(lambda tensor: tensor[chosen.to(tensor.device)], split)
    return next(in_order(torch.utils.data.Subset(split, chosen.tolist()), len(chosen), device))


class ShuffledBatches:
    """Endless batches from in-memory tensors, reshuffled every epoch.

    Batches are made by indexing whole tensors with a slice of a permutation: no
    per-example Python work. The ragged tail of each epoch is dropped so every step
    sees a full batch (a tiny last batch would get the same weight as a full one).

    ``transform(batch, generator)`` is applied to each batch (augmentation); it must
    draw its randomness from ``generator`` so a resumed run draws the same.

    The current permutation and position are the stream's only memory beyond the
    generator: ``state_dict`` / ``load_state_dict`` save and restore them, which is
    what makes a resumed run see exactly the batches an uninterrupted one would.
    """

    def __init__(self, split, batch_size: int, generator: torch.Generator, transform=None):
        self.split = split
        self.n = num_examples(split)
        self.device = first_tensor(split).device
        self.batch_size = min(batch_size, self.n)
        self.generator = generator
        self.transform = transform
        self.order = torch.empty(0, dtype=torch.long, device=self.device)
        self.position = 0

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        if self.position + self.batch_size > len(self.order):
            # Drawn on the CPU (where the generator lives), moved once per epoch
            # without blocking (the host does not wait for the GPU's queue).
            order = torch.randperm(self.n, generator=self.generator)
            self.order = order.to(self.device, non_blocking=True)
            self.position = 0
        index = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        batch = map_tensors(lambda tensor: tensor[index], self.split)
        return self.transform(batch, self.generator) if self.transform else batch

    def state_dict(self) -> dict:
        return {"order": self.order.cpu(), "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.order, self.position = state["order"].to(self.device), state["position"]


def micro_batches(batch: dict, n: int) -> list[dict]:
    """``batch`` as ``n`` consecutive slices for gradient accumulation; together they
    are exactly the batch, augmentation and all. Consecutive rather than strided
    (as ``shard`` takes): noise a model draws for its micro-batches in turn is then,
    on the CPU, the noise it would have drawn for the whole batch."""
    if n == 1:
        return [batch]
    return [map_tensors(lambda tensor, i=i: tensor.tensor_split(n)[i], batch) for i in range(n)]
