"""The training loop checked as wired: what train.train does to the weights, the LR it
logs, how it evaluates and which checkpoint it keeps as best, each against an
independent recomputation written here from first principles.

Testing the parts (the optimiser, the schedule) cannot see a loop that passes them
the wrong value: the schedule one step off, the clipping threshold of another key,
the LR set after the update. These tests run the real loop from the composed config
and only record what it did; they go through the contract (build_model,
train_batches, loss_fn, HEADLINE_METRIC), so they keep guarding the loop after
data.py, model.py and loss.py are replaced.
"""

from __future__ import annotations

import copy
import json
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

# torch's own AdamW arithmetic, without torch.optim's optimiser classes (building one
# imports torch._dynamo, ~1 s).
from torch.optim.adamw import adamw

import {{ cookiecutter.package_name }}.loss as paper_loss
import {{ cookiecutter.package_name }}.train as train_module
from {{ cookiecutter.package_name }}.data import (
    spec,
)
from {{ cookiecutter.package_name }}.engine.batches import (
    examples,
    map_tensors,
    named_tensors,
)
from {{ cookiecutter.package_name }}.engine.ckpt import (
    load_checkpoint,
)
from {{ cookiecutter.package_name }}.eval import (
    evaluate,
)
from {{ cookiecutter.package_name }}.judge.diagnostics import (
    output_tensors,
)
from {{ cookiecutter.package_name }}.loss import (
    HEADLINE_METRIC,
)
from {{ cookiecutter.package_name }}.model import (
    build_model,
)

STEPS, WARMUP = 8, 4  # the run ends half-way through a decay, after the warm-up
EPS = 1e-6  # small enough for clipping to matter (wired_config)
ADAPTIVE = {"adamw", "adam", "rmsprop"}  # the optimisers with an eps


def schedule(update: int, sched, peak: float, total: int) -> float:
    """The LR of the ``update``-th update (0 = the first), written out from each
    schedule's definition: linear warm-up to ``peak`` over warmup_steps updates,
    then constant, a half cosine or a straight line down to min_lr_ratio * peak at
    ``total``, gamma ** (completed step_size stretches), or peak * sqrt(warmup / n)."""
    warmup = sched.warmup_steps
    if update < warmup:
        return peak * (update + 1) / warmup
    name = sched.name.value  # the config holds schema.ScheduleName members
    if name == "constant":
        return peak
    if name == "inverse_sqrt":
        return peak * math.sqrt(max(warmup, 1) / (update + 1))
    if name == "step":
        return peak * sched.gamma ** ((update - warmup) // sched.step_size)
    progress = min((update - warmup) / (total - warmup), 1.0)
    shape = 0.5 * (1 + math.cos(math.pi * progress)) if name == "cosine" else 1 - progress
    return peak * (sched.min_lr_ratio + (1 - sched.min_lr_ratio) * shape)


def recipe_label(cfg) -> str:
    """What a recipe replay replays: optimiser, schedule, accumulation, average (and
    the players with their steps, for a paper that declares them)."""
    t = cfg.trainer
    ema = "no EMA" if t.ema_decay is None else f"EMA {t.ema_decay:g}"
    label = f"{cfg.optim.name.value}, {cfg.schedule.name.value}, accumulation {t.grad_accum_steps}, {ema}"
    players = [f"{name} x{steps}" for name, _, _, steps in player_plan(cfg) if name]
    return f"{label}, players {' '.join(players)}" if players else label


def player_plan(cfg) -> list[tuple]:
    """(name, optim, schedule, steps) per player in the order they step, written out
    from the config: the optim and schedule groups with each key the player's own
    config sets (not null) in their place. One player, None, without loss.PLAYERS."""
    declared = getattr(paper_loss, "PLAYERS", None)
    if declared is None:
        return [(None, cfg.optim, cfg.schedule, 1)]

    def merged(group, own):
        return SimpleNamespace(
            **{k: group[k] if own is None or own.get(k) is None else own[k] for k in group}
        )

    plan = []
    for name in declared:
        own = cfg.players.get(name)
        steps = 1 if own is None else own.steps
        plan.append(
            (
                name,
                merged(cfg.optim, own and own.optim),
                merged(cfg.schedule, own and own.schedule),
                steps,
            )
        )
    return plan


def keys(name) -> tuple[str, str]:
    """A player's logged LR and gradient-norm keys."""
    return (
        ("lr", "train/grad_norm")
        if name is None
        else (f"train/{name}/lr", f"train/{name}/grad_norm")
    )


def player_loss(model, batch, cfg, name):
    """The loss the player ``name`` minimises (None: loss_fn on the model's outputs)."""
    if name is None:
        return paper_loss.loss_fn(model(batch["inputs"]), batch, cfg.loss)
    return paper_loss.PLAYERS[name](model, batch, cfg.loss)


def fitted_to_the_run(cfg) -> list[str]:
    """Overrides that shrink the configured schedule's periods to the STEPS-long run,
    keeping its shape, so every part of its formula is reached."""
    sched, fit = cfg.schedule, []
    if sched.warmup_steps:
        fit.append(f"schedule.warmup_steps={min(sched.warmup_steps, WARMUP)}")
    if sched.step_size:
        fit.append(f"schedule.step_size={min(sched.step_size, 3)}")
    if cfg.trainer.ema_decay is not None:  # 0.9999 would barely move in STEPS updates
        fit.append(f"trainer.ema_decay={min(cfg.trainer.ema_decay, 0.7)}")
    return fit


def wired_config(quick_cfg, *recipe: str):
    """A short run with clipping, warm-up, decay and weight decay all mattering."""
    base = quick_cfg(*recipe)
    probe = build_model(base.model, spec(base.data))
    n_params = sum(p.numel() for p in probe.parameters() if p.requires_grad)
    # Clipped to this norm, a gradient element is ~10 eps on average: an adaptive
    # update m / (sqrt(v) + eps) then depends on the clipped scale, so a loop that
    # clips at the wrong threshold (or not at all) ends at other weights. Untrained
    # models' gradient norms are far above it: every step is clipped (asserted below).
    clip = 10 * EPS * math.sqrt(n_params)
    eps = [f"optim.eps={EPS}"] if base.optim.name.value in ADAPTIVE else []
    # With players, the first one's own LR (players.<name>.optim.lr, one command-line
    # override): the replay must see it in that player's updates and log only.
    own_lr = [
        f"++players.{name}.optim.lr={base.optim.lr / 2}" for name in list(paper_players())[:1]
    ]
    return quick_cfg(
        *recipe, f"trainer.max_steps={STEPS}", "trainer.log_every=1",
        f"trainer.eval_every={STEPS}", "optim.weight_decay=0.5", f"optim.grad_clip={clip}",
        *eps, *fitted_to_the_run(base), *own_lr,
    )  # fmt: skip


def paper_players() -> dict:
    """loss.PLAYERS, or none for a paper with one player."""
    return getattr(paper_loss, "PLAYERS", None) or {}


def record_run(cfg, run_dir) -> dict:
    """Run the real loop; return its initial weights and every batch it trained on
    with the global random state its forward pass started from."""
    record = {"batches": [], "initial": None}
    real_build, real_batches = train_module.build_model, train_module.train_batches

    def recording_build(*args):
        model = real_build(*args)
        record["initial"] = copy.deepcopy(model.state_dict())
        return model

    def recording_batches(*args):
        for batch in real_batches(*args):
            # Cloned: a collector may reuse its buffers. The random state is the one
            # the forward pass (dropout, sampled latents) starts from.
            snapshot = map_tensors(torch.clone, batch)
            record["batches"].append((snapshot, torch.get_rng_state()))
            yield batch

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_module, "build_model", recording_build)
        patch.setattr(train_module, "train_batches", recording_batches)
        patch.setattr(train_module, "summarise", lambda *args: {})  # not what is tested
        train_module.train(cfg, run_dir)
    return record


def pytest_generate_tests(metafunc):
    # The recipe the project's own config selects (the composition the tests use)
    # names the replay's test, so `pytest -v` says which recipe the default suite
    # replayed: the user's optimiser, schedule, accumulation and weight average,
    # whichever they are (the others are replayed in the slow suite: OTHER_RECIPES).
    if "recipe" in metafunc.fixturenames and metafunc.function.__name__.endswith(
        "configured_recipe"
    ):
        from conftest import quick_run_config  # quick_cfg's composition, shared

        metafunc.parametrize("recipe", [recipe_label(quick_run_config())])


@pytest.fixture(scope="module")
def wired_run(quick_cfg, tmp_path_factory):
    """The configured recipe run for STEPS steps."""
    cfg = wired_config(quick_cfg)
    run_dir = tmp_path_factory.mktemp("wired_run")
    return cfg, run_dir, record_run(cfg, run_dir)


def adamw_updates(params: list, o):
    """torch's AdamW arithmetic, weight decay on matrices only (as
    optim.build_optimizer documents); ``update(lr)`` steps every parameter."""
    moments = {p: (torch.zeros_like(p), torch.zeros_like(p), torch.zeros(())) for p in params}

    def update(lr: float) -> None:
        for p in params:
            m, v, count = moments[p]
            decay = o.weight_decay if p.ndim >= 2 else 0.0
            adamw(
                [p.data], [p.grad], [m], [v], [], [count], foreach=False, amsgrad=False,
                beta1=o.betas[0], beta2=o.betas[1], lr=lr, weight_decay=decay, eps=o.eps,
                maximize=False,
            )  # fmt: skip

    return update


def torch_optimiser_updates(params: list, o):
    """torch.optim's class for ``o.name``, weight decay (L2) on matrices only.
    (Building one imports torch._dynamo, ~1-2 s: AdamW uses adamw_updates.)"""
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": o.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    name = o.name.value  # the config holds schema.OptimName members
    if name == "adam":
        optimizer = torch.optim.Adam(groups, lr=0.0, betas=tuple(o.betas), eps=o.eps)
    elif name == "sgd":
        optimizer = torch.optim.SGD(groups, lr=0.0, momentum=o.momentum, nesterov=o.nesterov)
    else:
        optimizer = torch.optim.RMSprop(
            groups, lr=0.0, alpha=o.alpha, eps=o.eps, momentum=o.momentum, centered=o.centered
        )

    def update(lr: float) -> None:
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()

    return update


def backward_accumulated(model, batch, cfg, name) -> None:
    """The gradient of the batch's mean loss from trainer.grad_accum_steps consecutive
    slices, each slice's mean loss weighted by its share of the batch."""
    n = cfg.trainer.grad_accum_steps
    total = len(next(iter(named_tensors(batch).values())))
    for i in range(n):
        part = map_tensors(lambda tensor, i=i: tensor.tensor_split(n)[i], batch)
        share = len(next(iter(named_tensors(part).values()))) / total
        (player_loss(model, part, cfg, name) * share).backward()


def replay(cfg, record) -> tuple[dict, dict | None, dict[str, list[float]]]:
    """The same updates written out: per player, in order and as many steps as it
    takes, each on the next batch: the optimiser's arithmetic (torch's), the
    accumulated gradient, clip_grad_norm_ at the configured norm, the LR from the
    schedule's formula, and the weight average recomputed after every update (of
    that player's parameters). Returns the weights, the average (None without
    trainer.ema_decay) and per player the gradient norm before clipping of its
    last update in each step (what the log shows)."""
    model = build_model(cfg.model, spec(cfg.data))
    model.load_state_dict(record["initial"])
    model.train()
    decay = cfg.trainer.ema_decay
    players = []
    for name, o, sched, steps in player_plan(cfg):
        part = model if name is None else getattr(model, name)
        params = [p for p in part.parameters() if p.requires_grad]
        updates = adamw_updates if o.name.value == "adamw" else torch_optimiser_updates
        prefix = "" if name is None else f"{name}."
        players.append((name, o, sched, steps, params, updates(params, o), prefix))
    average = None if decay is None else copy.deepcopy(model.state_dict())
    batches = iter(record["batches"])
    norms = {name: [] for name, *_ in players}
    for step in range(STEPS):
        for name, o, sched, steps, params, update_weights, prefix in players:
            for k in range(steps):
                batch, rng_state = next(batches)
                torch.set_rng_state(rng_state)
                model.zero_grad(set_to_none=True)
                backward_accumulated(model, batch, cfg, name)
                norm = torch.nn.utils.clip_grad_norm_(params, o.grad_clip).item()
                update_weights(schedule(step * steps + k, sched, o.lr, STEPS * steps))
                if average is not None:
                    trained = dict(model.named_parameters())
                    for key, tensor in model.state_dict().items():
                        if key in trained and key.startswith(prefix):
                            average[key] = decay * average[key] + (1 - decay) * tensor.detach()
                        elif key not in trained:  # buffers (batch-norm statistics) are copied
                            average[key] = tensor.detach().clone()
            norms[name].append(norm)
    return model.state_dict(), average, norms


def read_records(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def assert_trained_as_replayed(cfg, run_dir, record, expected) -> None:
    for name, o, _, _ in player_plan(cfg):
        lr_key, norm_key = keys(name)
        logged = [r for r in read_records(run_dir) if lr_key in r]
        assert [r["step"] for r in logged] == list(range(1, STEPS + 1))
        assert all(r[norm_key] > o.grad_clip for r in logged), f"clipping inactive ({name})"

    trained = load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]
    assert trained.keys() == expected.keys()
    off = {name: (trained[name] - expected[name]).abs().max().item() for name in expected}
    worst = max(off, key=off.get)
    floats = [name for name, tensor in expected.items() if tensor.is_floating_point()]
    moved = max((expected[n] - record["initial"][n]).abs().max().item() for n in floats)
    # The same arithmetic gives the same bits here (and another summation order
    # differs by ~1e-7); a wrong LR, threshold or update rule is off by a sizeable
    # part of what training moved (clipping at 1.1x the threshold: ~5e-4).
    assert off[worst] < 1e-5 and off[worst] < 1e-2 * moved, (
        f"the loop's weights differ from the recomputation by {off[worst]:.3g} in {worst} "
        f"(training moved weights by up to {moved:.3g})"
    )


# The recipe in the test's name (pytest_generate_tests): `pytest -v` says what the
# default suite replayed.
def test_the_loop_updates_the_weights_as_the_configured_recipe(wired_run, quick_cfg, recipe):
    assert recipe_label(quick_cfg()) == recipe  # the composition the other tests use
    cfg, run_dir, record = wired_run
    weights, average, norms = replay(cfg, record)
    assert_trained_as_replayed(cfg, run_dir, record, weights)
    # Clipping hides a gradient's scale from the weights (an accumulation that sums
    # instead of averaging its micro-batches): the logged norm, before clipping, shows it.
    for name, replayed in norms.items():
        logged = [r[keys(name)[1]] for r in read_records(run_dir) if keys(name)[1] in r]
        assert logged == pytest.approx(replayed, rel=1e-4), f"gradient norms differ ({name})"
    if average is not None:  # the weights validation and eval use
        saved = load_checkpoint(run_dir / "checkpoints" / "last.pt")["ema"]
        off = max((saved[n] - average[n]).abs().max().item() for n in average)
        assert off < 1e-5, f"the weight average differs from its recomputation by {off:.3g}"


# The other optimisers, each with another schedule, against torch.optim's classes
# (building one imports torch._dynamo, ~1-2 s: hence the slow suite).
# The schedules' formulas are checked at hand-worked points in tests/test_recipe.py.
OTHER_RECIPES = {
    "adamw, cosine": ["optim=adamw", "schedule=cosine", "schedule.warmup_steps=4",
                      "schedule.min_lr_ratio=0.1"],
    "adam, linear": ["optim=adam", "schedule=linear", "schedule.warmup_steps=2",
                     "schedule.min_lr_ratio=0.2"],
    "sgd nesterov, step": ["optim=sgd", "optim.momentum=0.9", "optim.nesterov=true",
                           "optim.lr=0.05", "schedule=step", "schedule.step_size=3",
                           "schedule.gamma=0.5"],
    "rmsprop centered, inverse_sqrt": ["optim=rmsprop", "optim.momentum=0.9",
                                       "optim.centered=true", "schedule=inverse_sqrt",
                                       f"schedule.warmup_steps={WARMUP}"],
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("recipe", OTHER_RECIPES)
def test_the_loop_updates_the_weights_as_each_optimiser_and_schedule(quick_cfg, tmp_path, recipe):
    cfg = wired_config(quick_cfg, *OTHER_RECIPES[recipe])
    record = record_run(cfg, tmp_path)
    weights, _, _ = replay(cfg, record)
    assert_trained_as_replayed(cfg, tmp_path, record, weights)


def test_the_logged_lr_is_the_schedule(wired_run):
    cfg, run_dir, _ = wired_run
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for name, o, sched, steps in player_plan(cfg):
        lr_key = keys(name)[0]
        logged = [r for r in records if lr_key in r]
        assert len(logged) == STEPS
        for r in logged:  # the LR of the player's last update in that step
            want = schedule(r["step"] * steps - 1, sched, o.lr, STEPS * steps)
            assert r[lr_key] == pytest.approx(want, rel=1e-9), f"step {r['step']} ({name})"


def stochastic(model: torch.nn.Module) -> torch.nn.Module:
    """The model with its stochastic layers switched on: dropout at 0.5 where it has
    dropout, and dropout on every output besides (what a model without a stochastic
    layer needs for evaluation's mode to matter). Active in training mode only."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.5

    def dropout_outputs(module, args, output):
        if isinstance(output, dict):
            return {
                name: F.dropout(t, 0.5, module.training) if t.is_floating_point() else t
                for name, t in output.items()
            }
        return F.dropout(output, 0.5, module.training)

    model.register_forward_hook(dropout_outputs)
    return model


def test_evaluation_is_deterministic_and_keeps_the_model_s_mode(cfg, model, batch, splits):
    model = stochastic(model)
    # The stand-in is really stochastic in training mode, or this test proves nothing.
    model.train()
    first, second = (output_tensors(model(batch["inputs"]))[0] for _ in range(2))
    assert not torch.equal(first, second), "the dropout stand-in changed nothing"

    val = examples(splits["val"], 8)
    results = []
    for training in (True, False):
        model.train(training)
        # With the config: the split-level metrics (split_metrics) are evaluation too.
        results.append(evaluate(model, val, batch_size=4, cfg=cfg))
        assert model.training == training, "evaluate() changed the model's mode"
    # Called during training (dropout on) or not, twice: the same numbers. Two calls
    # only, as split_metrics may sample (a diffusion sampler: T steps each).
    assert results[0] == results[1], "evaluation is not deterministic, or uses dropout"


def test_baselines_are_reported_beside_the_metrics_once_per_split(cfg, model, splits, monkeypatch):
    """loss.baselines' numbers come back from every evaluation as <metric>_<baseline>
    (val/bpc_bigram in the logs, test/bpc_bigram for a claim), computed once per
    split: every validation evaluates the same split, and a baseline needs no model.
    A stand-in baseline is added to the paper's own (if it declares any), so this
    runs for every method."""
    declared = getattr(paper_loss, "baselines", None)
    calls = []

    def counted(split, config):
        calls.append(split)
        return {**(declared(split, config) if declared else {}), "stand_in": {"score": 0.25}}

    monkeypatch.setattr(paper_loss, "baselines", counted, raising=False)
    val, test = examples(splits["val"], 8), examples(splits["test"], 8)
    first = evaluate(model, val, batch_size=4, cfg=cfg)
    again = evaluate(model, val, batch_size=8, cfg=cfg)
    assert first["score_stand_in"] == 0.25
    assert len(calls) == 1, "the baselines were computed again for the same split"
    names = [f"{metric}_{name}" for name, values in counted(val, cfg).items() for metric in values]
    assert {k: first[k] for k in names} == {k: again[k] for k in names}
    evaluate(model, test, batch_size=4, cfg=cfg)
    assert calls[-1] is test, "another split reused the first split's baselines"


@pytest.mark.parametrize(("mode", "best_step"), [("max", 3), ("min", 2)])
def test_best_checkpoint_holds_the_best_validation(
    quick_cfg, tmp_path, monkeypatch, mode, best_step
):
    # Validations at steps 0 (init), 1, ..., 6 return this script. Its best is neither
    # the first nor the last, and "better than the previous validation" (instead of
    # than every earlier one) would pick step 5 (max) or 4 (min).
    script = iter([0.9, 0.5, 0.2, 0.8, 0.4, 0.6, 0.3])
    monkeypatch.setattr(train_module, "HEADLINE_MODE", mode)
    monkeypatch.setattr(
        train_module, "evaluate", lambda *args: {HEADLINE_METRIC: next(script), "loss": 1.0}
    )
    # The loop's cadence, its choice and its checkpoints are what is tested, not the
    # updates: the batches and steps become no-ops (RL's would play episodes).
    no_step = (torch.zeros(()), torch.zeros(()))
    monkeypatch.setattr(train_module, "next_batch", lambda *args: {})
    monkeypatch.setattr(train_module, "train_step", lambda *args, **kwargs: no_step)
    monkeypatch.setattr(train_module, "summarise", lambda *args: {})
    train_module.train(quick_cfg("trainer.max_steps=6", "trainer.eval_every=1"), tmp_path)
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert best["step"] == best_step
    assert best["metrics"][f"val/{HEADLINE_METRIC}"] == best["best"]
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert last["step"] == 6 and last["best"] == best["best"]
