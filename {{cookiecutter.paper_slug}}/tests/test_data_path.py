"""The real data path: the batches training draws and the splits evaluation reads.

test_overfit.py and test_gradients.py look at probe batches; these tests look at
consecutive batches drawn exactly as train.py draws them (the training batch size,
a model from build_model, a data generator seeded with cfg.seed), and compare them
with the evaluation splits. They go through the data contract only
(judge/data_checks.py says what each check catches and why), so they keep biting after
you replace data.py, model.py and loss.py with your own method's.

The last tests break real batches on purpose: they keep the checks themselves honest
on your data. The slowest data check, real inputs against zeroed ones on validation,
runs as a row of the gauntlet (test_gauntlet.py: on the example, and failing a model
that ignores its input).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from {{ cookiecutter.package_name }}.data import (
    batch_layout,
    build_splits,
    spec,
)
from {{ cookiecutter.package_name }}.engine.batches import (
    map_tensors,
    named_tensors,
)
from {{ cookiecutter.package_name }}.judge import (
    data_checks,
)
from {{ cookiecutter.package_name }}.model import (
    build_model,
)


@pytest.fixture(scope="module")
def loop_model(cfg, data_spec):
    """The untrained model the loop starts with (collectors play it)."""
    torch.manual_seed(cfg.seed)
    return build_model(cfg.model, data_spec)


@pytest.fixture(scope="module")
def drawn(cfg, splits, loop_model):
    """Three consecutive training batches, with the stream saved after the second."""
    return data_checks.draw_training_batches(cfg, splits["train"], loop_model)


def test_training_batches_are_finite(drawn):
    verdict = data_checks.finite(drawn.batches)
    assert verdict.passed, verdict.measured


def test_training_batches_carry_no_graph(drawn):
    # Targets computed with a network (TD targets, bootstrapped returns) come detached.
    verdict = data_checks.detached(drawn.batches)
    assert verdict.passed, verdict.measured


def test_training_batches_match_batch_layout(drawn, data_spec):
    verdict = data_checks.layout(drawn.batches, batch_layout(data_spec))
    assert verdict.passed, verdict.measured


def test_rows_are_not_repeated_beyond_chance(drawn, splits):
    # A sampler returning one index for the whole batch trains on one example a step.
    verdict = data_checks.duplicates(drawn.batches, splits["train"])
    assert verdict.passed, verdict.measured


def test_a_resumed_stream_draws_the_batches_the_uninterrupted_one_draws(
    cfg, splits, loop_model, drawn
):
    verdict = data_checks.resume(cfg, splits["train"], loop_model, drawn)
    assert verdict.passed, verdict.measured


def test_every_split_is_preprocessed_like_the_training_batches(drawn, splits):
    verdict = data_checks.split_statistics(drawn.batches, splits)
    if not verdict.applies:
        pytest.skip(verdict.measured)
    assert verdict.passed, verdict.measured


def test_every_example_keeps_its_own_target(cfg, drawn, splits):
    verdict = data_checks.targets_follow_examples(cfg, splits, drawn.batches)
    if not verdict.applies:
        pytest.skip(verdict.measured)
    assert verdict.passed, verdict.measured


def test_preprocessing_statistics_come_from_the_training_split(splits):
    verdict = data_checks.statistics_from_train(splits)
    if not verdict.applies:
        pytest.skip(verdict.measured)
    assert verdict.passed, verdict.measured


def test_evaluation_examples_are_the_same_every_time_they_are_read(splits):
    verdict = data_checks.evaluation_fixed(splits)
    if not verdict.applies:
        pytest.skip(verdict.measured)
    assert verdict.passed, verdict.measured


# --- The checks bite: real batches, broken on purpose --------------------------------


def test_the_duplicate_check_fails_one_row_for_the_whole_batch(drawn, splits):
    # The replay-sampler bug: one index drawn, broadcast to the whole batch.
    broken = [map_tensors(lambda t: t[:1].expand_as(t), b) for b in drawn.batches]
    assert not data_checks.duplicates(broken, splits["train"]).passed


def test_the_graph_check_fails_a_target_that_requires_grad(drawn):
    batch = named_tensors(drawn.batches[0])  # a dict of inputs as "inputs.x_t", ...
    # A target if there is one (a float one first: returns, pixels), else an input.
    key = max(
        sorted(batch), key=lambda k: (k.split(".")[0] != "inputs", batch[k].is_floating_point())
    )
    weight = torch.ones((), requires_grad=True)  # a "network" the target was made with
    broken = {**batch, key: batch[key].float() * weight}
    verdict = data_checks.detached([broken])
    assert not verdict.passed and key in verdict.measured


def test_the_layout_check_fails_a_changed_dtype_or_batch_size(drawn, data_spec):
    layout = batch_layout(data_spec)
    batch = named_tensors(drawn.batches[0])  # the layout check reads both forms
    key = sorted(batch)[-1]
    other = torch.float64 if batch[key].dtype != torch.float64 else torch.float32
    assert data_checks.layout_problems({**batch, key: batch[key].to(other)}, layout)
    if len(batch) > 1:  # one key shorter than the others: the batch sizes disagree
        assert data_checks.layout_problems({**batch, key: batch[key][1:]}, layout)


def test_the_input_baseline_zeroes_float_inputs_and_keeps_integer_conditions():
    # Zeroing a diffusion model's time step (or a class label) too would turn every
    # example into another question, not a blind one; all-integer inputs (tokens and
    # a mask) have nothing else to zero.
    x, t = torch.randn(4, 3), torch.tensor([5, 1, 7, 2])
    blind = data_checks.zeroed({"x_t": x, "t": t})
    assert torch.equal(blind["x_t"], torch.zeros_like(x)) and torch.equal(blind["t"], t)
    tokens = data_checks.zeroed({"tokens": t, "mask": t > 2})
    assert not any(v.any() for v in tokens.values())
    assert torch.equal(data_checks.zeroed(x), torch.zeros_like(x))


@pytest.mark.slow  # it trains (as the input baseline's runs do)
def test_the_short_run_honours_a_recipe_without_clipping(quick_cfg):
    # optim.grad_clip=null is "no clipping" (WGAN-GP, many RL papers): the input
    # baseline's short runs train with it as the loop does, instead of crashing.
    cfg = quick_cfg("optim.grad_clip=null")
    splits = build_splits(cfg.data)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, spec(cfg.data))
    before = [p.detach().clone() for p in model.parameters()]
    headline = data_checks.short_run(cfg, model, splits["train"], splits["val"], steps=2)
    assert isinstance(headline, float)
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))


class RandomlyFlipped(torch.utils.data.Dataset):
    """An evaluation split read from "files" with a random flip left in: the bug of
    an augmentation applied to every split."""

    def __len__(self) -> int:
        return 32

    def __getitem__(self, i: int) -> dict:
        image = torch.arange(6.0).view(2, 3) + i
        flip = bool(torch.rand(()) < 0.5)  # torch's global generator, as most code does
        return {"inputs": image.flip(-1) if flip else image, "targets": torch.tensor(i)}


def test_the_evaluation_check_fails_a_random_transform_of_val():
    fixed = {"inputs": torch.zeros(32, 2, 3), "targets": torch.arange(32)}
    verdict = data_checks.evaluation_fixed(
        {"train": fixed, "val": RandomlyFlipped(), "test": fixed}
    )
    assert not verdict.passed and "val: inputs" in verdict.measured, verdict.measured
    in_memory_only = data_checks.evaluation_fixed({"train": fixed, "val": fixed, "test": fixed})
    assert in_memory_only.passed and not in_memory_only.applies


def test_the_target_check_fails_labels_shuffled_apart_from_their_examples(monkeypatch):
    # Example i is file i; its label is what its folder says, i % 10. The bug: the
    # Dataset's label list shuffled (or sorted) apart from its file list.
    split = {"inputs": torch.arange(32.0)[:, None].expand(32, 4), "index": torch.arange(32)}
    split["labels"] = split["index"] % 10

    def from_folders(data_cfg, split_name, examples):
        return {"labels": examples["index"] % 10}

    monkeypatch.setattr(data_checks.paper_data, "source_targets", from_folders, raising=False)
    cfg = SimpleNamespace(data=None)
    honest = data_checks.targets_follow_examples(cfg, {"train": split, "val": split}, [split])
    assert honest.passed and honest.applies, honest.measured
    shuffled = {
        **split,
        "labels": split["labels"][torch.randperm(32, generator=torch.Generator().manual_seed(0))],
    }
    verdict = data_checks.targets_follow_examples(cfg, {"train": split, "val": shuffled}, [split])
    assert not verdict.passed and "val 'labels'" in verdict.measured, verdict.measured
    verdict = data_checks.targets_follow_examples(cfg, {"train": split, "val": split}, [shuffled])
    assert not verdict.passed and "train 'labels'" in verdict.measured, verdict.measured


def standardised_with(source: str) -> dict[str, dict[str, torch.Tensor]]:
    """Three splits of images [N, 2, 3, 3] standardised per channel with the mean and
    std of ``source`` ("train", "test", or "all")."""
    generator = torch.Generator().manual_seed(0)
    raw = {n: 3 + 2 * torch.rand(size, 2, 3, 3, generator=generator) for n, size in
           [("train", 120), ("val", 30), ("test", 30)]}  # fmt: skip
    pool = torch.cat(list(raw.values())) if source == "all" else raw[source]
    mean, std = pool.mean(dim=(0, 2, 3), keepdim=True), pool.std(dim=(0, 2, 3), keepdim=True)
    return {
        n: {"inputs": (x - mean) / std, "targets": torch.arange(len(x))} for n, x in raw.items()
    }


def test_the_statistics_check_fails_statistics_taken_from_the_test_split_or_all_data():
    honest = data_checks.statistics_from_train(standardised_with("train"))
    assert honest.passed and honest.applies, honest.measured
    from_test = data_checks.statistics_from_train(standardised_with("test"))
    assert not from_test.passed and "computed on test" in from_test.measured, from_test.measured
    from_all = data_checks.statistics_from_train(standardised_with("all"))
    assert not from_all.passed and "train + val + test" in from_all.measured, from_all.measured
    # Each tensor on its own: a target standardised honestly hides no leaking input.
    mixed = {n: {**split, "scores": split["inputs"][:, 0, 0, 0].clone()}
             for n, split in standardised_with("test").items()}  # fmt: skip
    train_scores = mixed["train"]["scores"]
    for split in mixed.values():
        split["scores"] = (split["scores"] - train_scores.mean()) / train_scores.std()
    verdict = data_checks.statistics_from_train(mixed)
    assert not verdict.passed and "'inputs'" in verdict.measured, verdict.measured
    # Fixed constants (or none): nothing exact anywhere, so nothing to trace.
    constants = {n: {**split, "inputs": split["inputs"] * 0.9 + 0.1}
                 for n, split in standardised_with("train").items()}  # fmt: skip
    verdict = data_checks.statistics_from_train(constants)
    assert verdict.passed and not verdict.applies, verdict.measured
