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

One DataLoader iterator serves the whole run: the batch sampler goes on from one
epoch into the next, so the workers never stop at an epoch's end (a new iterator
per epoch waits for every worker to restart, then for a first batch: ~20 ms each
time, 9% of the bundled vision example's training time with its 20-batch epochs).

Small batches cross from a worker to the loop several at a time. Every tensor a
worker hands over costs the loop ~0.5 ms whatever its size (a socket connection
and a file descriptor per tensor), 1.6 ms for a batch of three: 14% of a training
step of the vision example (64 images of 8x8 pixels, an 11 ms step). So a worker
reads ``batches_per_load`` consecutive batches as one (up to 8, while a load stays
under 256 KiB: one for batches of real-sized images) and the loop slices them apart.

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

from .batches import map_tensors, named_tensors, num_examples

SEED_RANGE = 2**62  # seeds drawn as int64 without overflow when combined below
LOAD_BYTES, MAX_BATCHES_PER_LOAD = 256 * 1024, 8


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
        self.batches_per_epoch = len(dataset) // self.batch_size
        # The stream's only draw from the data generator: its order and every
        # example's augmentation seed follow from it.
        self.state = StreamState(int(torch.randint(SEED_RANGE, (1,), generator=generator)))
        self.device = torch.device(device) if device is not None else None
        pin = self.device is not None and self.device.type == "cuda"
        self.batches_per_load = batches_per_load(dataset, self.batch_size) if num_workers else 1
        plan = EpochPlan(self.state, len(dataset), self.batch_size, self.batches_per_load)
        self.loader = DataLoader(
            Examples(dataset, augment),
            batch_sampler=plan,
            num_workers=num_workers,
            prefetch_factor=prefetch_factor if num_workers else None,
            # Workers kept when a resume restarts the iterator (start-up is slow).
            persistent_workers=num_workers > 0,
            pin_memory=pin,  # page-locked host memory: copies to the GPU overlap
            # The loader's own base seed, drawn from this, not from the global one.
            generator=torch.Generator().manual_seed(self.state.seed),
        )
        self._loads = None
        self._pending: list[dict] = []  # batches of the last load not yet handed out

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        if not self._pending:
            if self._loads is None:
                self._loads = iter(self.loader)  # the plan starts at epoch, position
            load = next(self._loads)  # endless: the plan runs on into the next epoch
            size = self.batch_size
            self._pending = [
                map_tensors(lambda tensor, i=i: tensor[i * size : (i + 1) * size], load)
                for i in range(num_examples(load) // size)
            ]
        batch = self._pending.pop(0)
        self.state.position += 1
        if self.state.position == self.batches_per_epoch:
            self.state.epoch, self.state.position = self.state.epoch + 1, 0
        if self.device is None:
            return batch
        return map_tensors(lambda tensor: tensor.to(self.device, non_blocking=True), batch)

    def state_dict(self) -> dict:
        return {"seed": self.state.seed, "epoch": self.state.epoch, "position": self.state.position}

    def load_state_dict(self, state: dict) -> None:
        self.state.seed, self.state.epoch = state["seed"], state["epoch"]
        self.state.position = state["position"]
        # Drops what workers prefetched; the plan restarts at epoch, position.
        self._loads, self._pending = None, []


class EpochPlan:
    """The batch sampler: batches of (index, seed) pairs, from the stream's epoch and
    position when the loader is iterated on, epoch after epoch without end. It runs
    ahead of the loop (the loader draws from it to keep the workers busy), so it
    reads the stream's state once, at the start, and then keeps its own count."""

    def __init__(self, state: StreamState, n: int, batch_size: int, batches_per_load: int = 1):
        self.state, self.n, self.batch_size = state, n, batch_size
        self.batches_per_load = batches_per_load

    def batches(self):
        size, per_epoch = self.batch_size, self.n // self.batch_size
        epoch, start = self.state.epoch, self.state.position
        while True:
            order, seeds = epoch_plan(self.state.seed, epoch, self.n)
            for b in range(start, per_epoch):
                index = order[b * size : (b + 1) * size]
                yield list(zip(index.tolist(), seeds[index].tolist(), strict=True))
            epoch, start = epoch + 1, 0

    def __iter__(self):
        """Loads: ``batches_per_load`` consecutive batches, joined."""
        batches = self.batches()
        while True:
            yield [pair for _ in range(self.batches_per_load) for pair in next(batches)]


def batches_per_load(dataset, batch_size: int) -> int:
    """How many batches a worker reads at once: as many as keep a load under
    LOAD_BYTES (at least 1, at most MAX_BATCHES_PER_LOAD), from the first example."""
    example_bytes = sum(t.numel() * t.element_size() for t in named_tensors(dataset[0]).values())
    fits = LOAD_BYTES // max(1, example_bytes * batch_size)
    return max(1, min(MAX_BATCHES_PER_LOAD, fits))


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
