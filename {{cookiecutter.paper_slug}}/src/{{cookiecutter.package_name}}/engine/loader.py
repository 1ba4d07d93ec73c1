"""LoaderBatches: endless training batches of a map-style Dataset (files on disk,
decoded and augmented by DataLoader workers), resumable exactly.

``ShuffledBatches`` (engine/batches.py) indexes tensors held in memory; a split
too large for memory, or one read from image files, is a ``torch.utils.data.Dataset``
instead, ``dataset[i]`` giving one example as a dict of tensors. Three things make
a plain ``DataLoader(dataset, shuffle=True, num_workers=2)`` unable to resume where
it stopped, and this class does each differently:

- the order: a DataLoader without ``generator=`` draws it from torch's global
  generator. Here every epoch's permutation comes from the stream's own seed (one
  draw from the data generator), so it is the same in a resumed run and the global
  generator is never touched;
- augmentation: a worker's random state after k examples depends on which examples
  that worker happened to load, and cannot be restored mid-epoch. Here the batch
  sampler hands each example its own seed with its index (drawn with the
  permutation), and ``augment(example, generator)`` draws from a generator seeded
  with it: the same example at the same place of the same epoch is augmented the
  same way in any worker, so batches are identical for any ``num_workers``;
- prefetching: workers load batches ahead of what the loop consumed. Here
  ``position`` counts the batches handed to the loop, and a resumed stream starts
  the sampler at that position: the batches prefetched but never used are simply
  loaded again.

torchdata's ``StatefulDataLoader`` saves the workers' random states instead; its
batches then depend on the number of workers, which the explicit seeds avoid, and it
is a dependency this needs no more of than ``torch.utils.data``.

Like ShuffledBatches, each epoch's ragged tail is dropped (every step sees a full
batch) and ``state_dict`` / ``load_state_dict`` are what a checkpoint saves.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from .batches import map_tensors

SEED_RANGE = 2**62  # seeds drawn as int64 without overflow when combined below


@dataclass
class StreamState:
    """Where the stream is; shared by the stream and its batch sampler (which must
    not hold the stream itself: a reference cycle would leave the workers to the
    garbage collector, whose shutdown of them waits ~5 s a worker)."""

    seed: int
    epoch: int = 0
    position: int = 0  # batches of this epoch handed out


def epoch_plan(seed: int, epoch: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Epoch ``epoch``'s order of the ``n`` examples and each example's seed."""
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % SEED_RANGE)
    order = torch.randperm(n, generator=generator)
    return order, torch.randint(SEED_RANGE, (n,), generator=generator)


class LoaderBatches:
    def __init__(
        self,
        dataset,
        batch_size: int,
        generator: torch.Generator,
        num_workers: int = 0,
        prefetch_factor: int = 2,
        augment=None,
        device: torch.device | str | None = None,
    ):
        self.dataset = dataset
        self.batch_size = min(batch_size, len(dataset))
        # The stream's only draw from the data generator: its order and every
        # example's augmentation seed follow from it.
        self.state = StreamState(int(torch.randint(SEED_RANGE, (1,), generator=generator)))
        self.device = torch.device(device) if device is not None else None
        pin = self.device is not None and self.device.type == "cuda"
        self.loader = DataLoader(
            Examples(dataset, augment),
            batch_sampler=EpochPlan(self.state, len(dataset), self.batch_size),
            num_workers=num_workers,
            prefetch_factor=prefetch_factor if num_workers else None,
            # Workers started once, not every epoch (start-up is seconds with files).
            persistent_workers=num_workers > 0,
            pin_memory=pin,  # page-locked host memory: copies to the GPU overlap
            # The loader's own base seed, drawn from this, not from the global one.
            generator=torch.Generator().manual_seed(self.state.seed),
        )
        self._batches = None

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        while True:
            if self._batches is None:
                self._batches = iter(self.loader)  # the plan starts at self.position
            try:
                batch = next(self._batches)
                break
            except StopIteration:
                self.state.epoch, self.state.position, self._batches = self.state.epoch + 1, 0, None
        self.state.position += 1
        if self.device is None:
            return batch
        return map_tensors(lambda tensor: tensor.to(self.device, non_blocking=True), batch)

    def state_dict(self) -> dict:
        return {"seed": self.state.seed, "epoch": self.state.epoch, "position": self.state.position}

    def load_state_dict(self, state: dict) -> None:
        self.state.seed, self.state.epoch = state["seed"], state["epoch"]
        self.state.position = state["position"]
        self._batches = None  # drops what workers prefetched; restarts at position


class EpochPlan:
    """The batch sampler: the current epoch's batches from the stream's position on,
    each a list of (index, seed) pairs. Iterated in the main process every time the
    loader is (persistent workers included), so it always reads the stream's state."""

    def __init__(self, state: StreamState, n: int, batch_size: int):
        self.state, self.n, self.batch_size = state, n, batch_size

    def __len__(self) -> int:
        return self.n // self.batch_size

    def __iter__(self):
        state, size = self.state, self.batch_size
        order, seeds = epoch_plan(state.seed, state.epoch, self.n)
        for b in range(state.position, len(self)):
            index = order[b * size : (b + 1) * size]
            yield list(zip(index.tolist(), seeds[index].tolist(), strict=True))


class Examples(Dataset):
    """``dataset[index]``, augmented by ``augment(example, generator)`` with a
    generator seeded from the example's own seed (in whichever worker loads it)."""

    def __init__(self, dataset, augment=None):
        self.dataset, self.augment = dataset, augment

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        index, seed = key
        example = self.dataset[index]
        if self.augment is None:
            return example
        return self.augment(example, torch.Generator().manual_seed(seed))
