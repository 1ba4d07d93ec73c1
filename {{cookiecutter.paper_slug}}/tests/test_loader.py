"""engine/loader.py: batches of a map-style Dataset read by DataLoader workers, the
same for any number of workers and resumed exactly, mid-epoch and at an epoch
boundary, without touching torch's global generator. The Dataset here stands in for
files on disk; the tests with workers start processes (slow suite)."""

from __future__ import annotations

import pytest
import torch

from {{ cookiecutter.package_name }}.engine.loader import (
    LoaderBatches,
)

EXAMPLES, BATCH = 22, 4  # 5 batches an epoch, 2 examples dropped


class Numbered(torch.utils.data.Dataset):
    """Example i: an image of value i and its label i (a file's contents)."""

    def __len__(self) -> int:
        return EXAMPLES

    def __getitem__(self, i: int) -> dict:
        return {"inputs": torch.full((2, 3), float(i)), "labels": torch.tensor(i)}


def jitter(example: dict, generator: torch.Generator) -> dict:
    """A random augmentation of the input; the label stays the example's."""
    noise = torch.rand(example["inputs"].shape, generator=generator)
    return {**example, "inputs": example["inputs"] + noise}


def stream(workers: int = 0, seed: int = 0) -> LoaderBatches:
    generator = torch.Generator().manual_seed(seed)
    return LoaderBatches(Numbered(), BATCH, generator, num_workers=workers, augment=jitter)


def take(batches, n: int) -> list[dict]:
    return [next(batches) for _ in range(n)]


def same(a: list[dict], b: list[dict]) -> bool:
    return all(
        torch.equal(x["inputs"], y["inputs"]) and torch.equal(x["labels"], y["labels"])
        for x, y in zip(a, b, strict=True)
    )


def test_each_epoch_shows_every_example_at_most_once_and_keeps_labels_with_examples():
    batches = take(stream(), 10)  # two epochs
    for epoch in (batches[:5], batches[5:]):
        labels = torch.cat([b["labels"] for b in epoch])
        assert len(labels.unique()) == len(labels) == 5 * BATCH
    for b in batches:  # the augmentation moved the input by less than 1: still its label's
        assert torch.equal(b["inputs"].floor()[:, 0, 0].long(), b["labels"])
    assert not same(batches[:5], batches[5:]), "the second epoch repeated the first's order"


@pytest.mark.parametrize("after", [3, 5, 7], ids=["mid-epoch", "epoch end", "next epoch"])
def test_a_resumed_stream_draws_what_the_uninterrupted_one_draws(after):
    whole = take(stream(), 12)
    first = stream()
    take(first, after)
    state = first.state_dict()
    resumed = stream(seed=99)  # another data generator: the state alone decides
    resumed.load_state_dict(state)
    assert same(take(resumed, 12 - after), whole[after:])


def test_the_global_generator_is_untouched_and_the_data_generator_decides():
    before = torch.get_rng_state()
    batches = take(stream(), 7)
    assert torch.equal(torch.get_rng_state(), before)
    assert not same(batches, take(stream(seed=1), 7))


@pytest.mark.slow  # starts worker processes
def test_two_workers_give_the_batches_one_process_gives_and_resume_exactly():
    one = take(stream(workers=0), 12)
    two = stream(workers=2)
    assert same(take(two, 7), one[:7])  # across an epoch boundary, prefetching ahead
    resumed = stream(workers=2, seed=5)
    resumed.load_state_dict(two.state_dict())
    assert same(take(resumed, 5), one[7:])
