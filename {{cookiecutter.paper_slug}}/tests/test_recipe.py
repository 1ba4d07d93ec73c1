"""The paper's training recipe as the loop runs it: each LR schedule's formula at
hand-checked points, the optimiser config's keys, gradient accumulation against
one large batch, and the weight average (EMA) against a recomputation.

These go through the contract (build_model, train_batches, loss_fn) and the real
loop, so they keep guarding the recipe after data.py, model.py and loss.py are
replaced. The ones that train are in the slow suite (`pytest -m slow`): what they
check is off by default, and the default suite stays quick. The same-weights-as-torch check of each optimiser and the resume checks
with a recipe switched on are in tests/test_loop.py and tests/test_resume.py.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from types import SimpleNamespace

import pytest
import torch

import {{ cookiecutter.package_name }}.eval as eval_module
import {{ cookiecutter.package_name }}.train as train_module
from {{ cookiecutter.package_name }}.engine.ckpt import (
    load_checkpoint,
)
from {{ cookiecutter.package_name }}.engine.optim import (
    build_optimizer,
    build_schedule,
)

# (schedule config, max_steps, {update (0 = the first): LR factor worked out by hand})
SCHEDULES = {
    "constant": ({"warmup_steps": 0}, 100, {0: 1.0, 50: 1.0, 99: 1.0}),
    "constant after warm-up": ({"warmup_steps": 5}, 100, {0: 0.2, 2: 0.6, 4: 1.0, 99: 1.0}),
    # 10 warm-up updates, then cosine over 100: half-way (update 60) is the mean of
    # 1 and the floor; at and after max_steps the floor.
    "cosine": (
        {"warmup_steps": 10, "min_lr_ratio": 0.1},
        110,
        {0: 0.1, 9: 1.0, 10: 1.0, 60: 0.55, 110: 0.1, 150: 0.1},
    ),
    "linear": ({"warmup_steps": 0, "min_lr_ratio": 0.0}, 100, {0: 1.0, 25: 0.75, 100: 0.0}),
    "linear to a floor": (
        {"warmup_steps": 20, "min_lr_ratio": 0.2},
        120,
        {0: 0.05, 19: 1.0, 70: 0.6, 120: 0.2},
    ),
    "step": (
        {"warmup_steps": 0, "step_size": 30, "gamma": 0.1},
        100,
        {0: 1.0, 29: 1.0, 30: 0.1, 59: 0.1, 60: 0.01, 99: 0.001},
    ),
    # Vaswani et al. (2017), eq. 3, with d_model = 512 and 4000 warm-up steps: the
    # paper's lrate divided by its peak 512^-0.5 * 4000^-0.5 = 6.988e-4. Update n = 1
    # gets 1/4000 of it, n = 4000 all of it, n = 16000 half (1/sqrt(4)).
    "inverse_sqrt": (
        {"warmup_steps": 4000},
        100_000,
        {0: 1 / 4000, 1999: 0.5, 3999: 1.0, 15999: 0.5, 63999: 0.25},
    ),
}


@pytest.mark.parametrize("label", SCHEDULES)
def test_each_schedule_gives_its_hand_checked_values(label):
    keys, max_steps, expected = SCHEDULES[label]
    name = label.split(" ")[0]
    unset = {"warmup_steps": 0, "min_lr_ratio": None, "step_size": None, "gamma": None}
    cfg = SimpleNamespace(name=name, **{**unset, **keys})
    schedule = build_schedule(cfg, max_steps)
    got = {step: schedule(step) for step in expected}
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12), label


def test_inverse_sqrt_is_the_transformer_paper_s_formula():
    # The paper's own formula, lrate = d^-0.5 * min(n^-0.5, n * w^-1.5), against
    # optim.lr = its peak times our factor, at every update of the first 20000.
    d_model, warmup = 512, 4000
    peak = d_model**-0.5 * warmup**-0.5
    cfg = SimpleNamespace(name="inverse_sqrt", warmup_steps=warmup, min_lr_ratio=None,
                          step_size=None, gamma=None)  # fmt: skip
    schedule = build_schedule(cfg, 100_000)
    for n in [*range(1, 8001, 7), 12_345, 16_000, 99_999]:
        paper = d_model**-0.5 * min(n**-0.5, n * warmup**-1.5)
        assert math.isclose(peak * schedule(n - 1), paper, rel_tol=1e-9), n


ADAMW = {"name": "adamw", "lr": 1e-3, "weight_decay": 0.0, "grad_clip": 1.0, "betas": [0.9, 0.99],
         "eps": 1e-8, "momentum": None, "nesterov": None, "alpha": None, "centered": None}  # fmt: skip
COSINE = {"name": "cosine", "warmup_steps": 0, "min_lr_ratio": 0.1, "step_size": None,
          "gamma": None}  # fmt: skip


@pytest.mark.parametrize(
    ("optim", "schedule", "message"),
    [
        ({"name": "sgd", "momentum": 0.9, "nesterov": False}, {},
         "optim.betas=[0.9, 0.99] does not apply to optim=sgd"),
        ({"name": "rmsprop", "betas": None, "centered": False, "momentum": 0.0}, {},
         "optim.alpha must be set for optim=rmsprop"),
        ({}, {"name": "constant"}, "schedule.min_lr_ratio=0.1 does not apply to schedule=constant"),
        ({}, {"name": "step", "min_lr_ratio": None, "step_size": 10},
         "schedule.gamma must be set for schedule=step"),
    ],
)  # fmt: skip
def test_a_key_the_choice_does_not_read_is_an_error(optim, schedule, message):
    # Silently ignored, optim=sgd optim.betas=... would train something else than
    # the config says. Checked before any torch.optim class is built.
    with pytest.raises(ValueError, match=re.escape(message)):
        build_optimizer(torch.nn.Linear(2, 2), SimpleNamespace(**{**ADAMW, **optim}))
        build_schedule(SimpleNamespace(**{**COSINE, **schedule}), 10)


def frozen_in_eval_mode(build, initial: list):
    """build_model whose model stays in eval mode: dropout off and batch norm on its
    running statistics, so no layer couples the examples of a batch (without that a
    half batch is not the same computation as a whole one). Records the initial
    weights in ``initial``."""

    def build_model(*args):
        model = build(*args).eval()
        model.train = lambda mode=True: model  # the loop's .train() leaves it so
        initial.append({n: t.clone() for n, t in model.state_dict().items()})
        return model

    return build_model


def run(cfg, run_dir) -> tuple[dict[str, torch.Tensor], list[float]]:
    """The trained weights and the logged training losses of a run."""
    train_module.train(cfg, run_dir)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    weights = load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]
    return weights, [r["train/loss"] for r in records if "train/loss" in r]


def largest_difference(a: dict, b: dict) -> float:
    return max((a[n] - b[n]).abs().max().item() for n in a if a[n].is_floating_point())


@pytest.mark.slow  # trains twice; the option is off by default
def test_accumulating_half_batches_updates_as_the_whole_batch(quick_cfg, tmp_path, monkeypatch):
    initial = []
    frozen = frozen_in_eval_mode(train_module.build_model, initial)
    monkeypatch.setattr(train_module, "build_model", frozen)
    monkeypatch.setattr(train_module, "summarise", lambda *args: {})  # not what is tested
    # Adam with a huge eps steps by lr * m / eps: in proportion to the gradient, so
    # a gradient twice too large (micro-batch losses not scaled), half of it (the
    # first micro-batch's zeroed) or two steps per batch all end elsewhere. No
    # clipping, which would hide the scale.
    recipe = ("trainer.max_steps=3", "trainer.log_every=1", "trainer.eval_every=3",
              "optim=adamw", "optim.eps=100", "optim.lr=100", "optim.weight_decay=0",
              "optim.grad_clip=null")  # fmt: skip
    whole, whole_losses = run(quick_cfg(*recipe), tmp_path / "whole")
    halves, halves_losses = run(quick_cfg(*recipe, "trainer.grad_accum_steps=2"), tmp_path / "h")

    moved = largest_difference(whole, initial[0])
    off = largest_difference(halves, whole)
    # The same sums in another order differ by float32 rounding (measured up to
    # ~1e-4 of what training moved, on a denoiser); any of the bugs above by a
    # sizeable part of it (a loss not scaled: the whole movement again).
    assert moved > 0, "training did not move the weights: nothing to compare"
    assert off <= 1e-3 * moved, (
        f"accumulating 2 half batches ends {off:.3g} away from the whole batch "
        f"(training moved weights by up to {moved:.3g})"
    )
    # The logged loss is the whole batch's mean either way.
    assert halves_losses == pytest.approx(whole_losses, rel=1e-5)


@pytest.mark.slow  # trains; the option is off by default
def test_the_weight_average_is_what_validation_and_eval_see(quick_cfg, tmp_path, monkeypatch):
    """trainer.ema_decay: after every update average <- d * average + (1 - d) * weights,
    recomputed here from the weights after each update; every validation, best.pt's
    choice and eval.py evaluate that average, not the trained weights."""
    # 0.75, not 0.5: with 0.5 a swapped decay and 1 - decay would be the same.
    decay, steps = 0.75, 6
    trajectory, initial, evaluated = [], [], []
    real_step, real_build = train_module.train_step, train_module.build_model

    def recording_step(run, player, *args, **kwargs):
        result = real_step(run, player, *args, **kwargs)
        weights = {n: p.detach().clone() for n, p in run.model.named_parameters()}
        # A player's update averages its own parameters (every one, for one player).
        trajectory.append((run.step, player.param_names if player.name else weights, weights))
        return result

    def recording_build(*args):
        model = real_build(*args)
        initial.append({n: p.detach().clone() for n, p in model.named_parameters()})
        return model

    def recording_evaluate(evaluate):
        def wrapper(model, *args, **kwargs):
            evaluated.append({n: p.detach().clone() for n, p in model.named_parameters()})
            return evaluate(model, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(train_module, "train_step", recording_step)
    monkeypatch.setattr(train_module, "build_model", recording_build)
    monkeypatch.setattr(train_module, "evaluate", recording_evaluate(train_module.evaluate))
    monkeypatch.setattr(eval_module, "evaluate", recording_evaluate(eval_module.evaluate))
    monkeypatch.setattr(train_module, "summarise", lambda *args: {})  # not what is tested
    cfg = quick_cfg(f"trainer.max_steps={steps}", "trainer.eval_every=3",
                    f"trainer.ema_decay={decay}")  # fmt: skip
    train_module.train(cfg, tmp_path)

    # The average after 0, 3 and 6 updates, written out.
    expected, average = [initial[0]], dict(initial[0])
    for i, (step, names, weights) in enumerate(trajectory):
        average = {
            n: decay * average[n] + (1 - decay) * weights[n] if n in names else average[n]
            for n in average
        }
        last_of_step = i + 1 == len(trajectory) or trajectory[i + 1][0] != step
        if step % 3 == 0 and last_of_step:
            expected.append(average)
    eval_module.evaluate_checkpoint(tmp_path / "checkpoints" / "last.pt", split="val")
    expected.append(average)  # eval.py, on the final checkpoint

    assert len(evaluated) == len(expected) == 4
    for when, (seen, want) in enumerate(zip(evaluated, expected, strict=True)):
        off = largest_difference(seen, want)
        at = min(3 * when, steps)
        trained = [w for step, _, w in trajectory if step == at][-1] if when else initial[0]
        assert off <= 1e-6, f"evaluation {when} saw weights {off:.3g} from the average"
        if when:  # the average is not the trained weights, so the check above can fail
            assert largest_difference(trained, want) > 1e-5
    final = json.loads((tmp_path / "metrics.json").read_text())
    assert final["evaluated_weights"] == f"ema {decay}"


class CountingBatches:
    """The data iterator wrapped: reports how many batches it gave (its scalars, as
    an RL collector reports environment steps) and stalls once, before batch 3. The
    ``n`` batches the run needs are drawn up front, so that a data source slow of
    its own (workers reading files) stalls nowhere else."""

    def __init__(self, batches, stall_seconds: float, n: int):
        batches = iter(batches)
        self.batches = iter([next(batches) for _ in range(n)])
        self.stall_seconds, self.given = stall_seconds, 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.given == 2:
            time.sleep(self.stall_seconds)
        self.given += 1
        return next(self.batches)

    def scalars(self) -> dict[str, float]:
        return {"batches": self.given}


@pytest.mark.slow  # trains and waits for a stall
def test_the_iterator_s_scalars_are_logged_and_a_stall_is_warned_about(
    quick_cfg, tmp_path, monkeypatch, caplog, loss_calls
):
    real = train_module.train_batches
    cfg = quick_cfg("trainer.max_steps=4", "trainer.log_every=2", "trainer.eval_every=4",
                    "trainer.stall_warning_seconds=0.1")  # fmt: skip
    # A batch per player step (one per training step, for one player).
    per_step = len(loss_calls(cfg)) // cfg.trainer.grad_accum_steps
    monkeypatch.setattr(
        train_module, "train_batches", lambda *args: CountingBatches(real(*args), 0.3, 4 * per_step)
    )
    monkeypatch.setattr(train_module, "summarise", lambda *args: {})  # not what is tested
    with caplog.at_level(logging.WARNING, logger=train_module.__name__):
        train_module.train(cfg, tmp_path)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    logged = {r["step"]: r["data/batches"] for r in records if "data/batches" in r}
    assert logged == {2: 2 * per_step, 4: 4 * per_step}, "the iterator's scalars are not logged"
    stalls = [r.getMessage() for r in caplog.records if "no training batch" in r.getMessage()]
    assert len(stalls) == 1 and "CountingBatches" in stalls[0], stalls
