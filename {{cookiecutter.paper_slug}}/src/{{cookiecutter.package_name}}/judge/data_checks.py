"""Checks of the real data path: the batches training draws, the splits evaluation reads.

The overfit checks look at probe batches (``overfit_batch``), the gradient and init
checks at one batch. These bugs live on the path training really takes, over many
batches and the splits, pass those checks, and
were each seen in real reproductions:

- a replay sampler that returns one transition for the whole batch (training still
  "works", on one example per step);
- TD targets or bootstrapped returns computed with the network and not detached:
  gradient flows into the target, and the loss falls by moving its own target;
- a batch whose shapes or dtypes are not what the loss assumes ([B] - [B, 1]
  silently broadcasts to [B, B]);
- a data stream whose ``state_dict`` forgets something: a resumed run trains on
  other batches than the run it continues would have;
- val/test preprocessed differently from train (left unnormalised, another scale);
- a model that, trained on real batches, does no better than one that sees nothing.

Every function works through the data contract only (``spec``, ``build_splits``,
``train_batches``, ``batch_layout``, ``build_model``, ``loss_fn``, ``metrics_fn``,
``HEADLINE_METRIC``/``HEADLINE_MODE``), so the checks keep working when data.py,
model.py and loss.py are replaced by another method's. tests/test_data_path.py and
the gauntlet both call them; each returns a ``Verdict``.
"""

from __future__ import annotations

import io
import itertools
import math
from dataclasses import dataclass

import torch

from .. import data as paper_data
from ..data import train_batches
from ..engine.batches import examples, in_memory, in_order, map_tensors, named_tensors, num_examples
from ..engine.runtime import plain, rng_states, set_rng_states
from ..loss import HEADLINE_METRIC, HEADLINE_MODE
from .player_steps import optimisers, step_players


@dataclass
class Verdict:
    passed: bool
    measured: str  # what was seen, in words (the failure message)
    applies: bool = True  # False: nothing here to check; ``measured`` says why
    value: float | None = None  # the number judged, where later checks use it


def not_applicable(reason: str) -> Verdict:
    # Passing, so it fails nothing, but said out loud: a check that cannot look
    # must not read like one that looked and found nothing.
    return Verdict(True, f"n/a: {reason}", applies=False)


# --- Drawing batches the way train.py does ------------------------------------------


def training_stream(cfg, split, model, seed: int | None = None):
    """(generator, batches) as train.py makes them: the data config as a plain
    object, the training batch size, a data generator seeded with ``cfg.seed``."""
    generator = torch.Generator().manual_seed(cfg.seed if seed is None else seed)
    batches = train_batches(plain(cfg.data), split, cfg.trainer.batch_size, generator, model)
    return generator, batches


def draw(batches, n: int) -> list[dict[str, torch.Tensor]]:
    return [next(batches) for _ in range(n)]


@dataclass
class Drawn:
    """Consecutive training batches, and what a checkpoint would have saved of the
    stream after the first ``saved_after`` of them (for the resume check)."""

    batches: list[dict[str, torch.Tensor]]
    saved_after: int
    saved: dict


def draw_training_batches(cfg, split, model, n: int = 3, save_after: int = 2) -> Drawn:
    """``n`` consecutive batches as the loop draws them, with the stream's state
    saved after ``save_after`` of them the way train.py's checkpoint saves it: its
    ``state_dict`` if it has one, the data generator and the global random states,
    through a ``weights_only`` save and load (what a checkpoint holds must survive it)."""
    generator, batches = training_stream(cfg, split, model)
    first = draw(batches, save_after)
    state = {
        "batches": batches.state_dict() if hasattr(batches, "state_dict") else None,
        "rng": rng_states(generator),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    # Training changes the weights between a checkpoint and the resume: so does
    # this. A stream that copies the model when it is built (a target network, a
    # frozen teacher) and does not save that copy then resumes with other weights.
    nudge(model)
    return Drawn(first + draw(batches, n - save_after), save_after, saved)


@torch.no_grad()
def nudge(model: torch.nn.Module) -> None:
    """Move every floating-point weight a little, the same way every time."""
    generator = torch.Generator().manual_seed(0)
    for param in model.parameters():
        if param.is_floating_point():
            noise = torch.randn(param.shape, generator=generator).to(param)
            param.add_(0.01 * noise)


# --- Single batches ---------------------------------------------------------------


def finite(batches) -> Verdict:
    """Every float tensor of every batch finite (a log of 0 or a division by a zero
    std in the data turns the first step's loss into NaN, far from its cause)."""
    bad = [
        f"batch {i} '{key}' ({int((~torch.isfinite(t)).sum())} values)"
        for i, batch in enumerate(batches)
        for key, t in named_tensors(batch).items()
        if t.is_floating_point() and not torch.isfinite(t).all()
    ]
    if bad:
        return Verdict(False, "not finite: " + ", ".join(bad[:4]))
    return Verdict(True, f"{len(batches)} batches, all values finite")


def detached(batches) -> Verdict:
    """No batch tensor requires grad or carries a graph. Targets computed with a
    network (TD targets, bootstrapped returns, a teacher's outputs) must come out
    of the data under ``torch.no_grad()`` or ``.detach()``: otherwise the loss's
    gradient also moves the network that made the target, which is another
    algorithm (and keeps every step's graph alive)."""
    for i, batch in enumerate(batches):
        bad = [
            f"'{key}' (grad_fn={type(t.grad_fn).__name__})"
            if t.grad_fn is not None
            else f"'{key}' (requires_grad)"
            for key, t in named_tensors(batch).items()
            if t.requires_grad or t.grad_fn is not None
        ]
        if bad:
            return Verdict(
                False,
                f"batch {i}: tensors carry a graph: {', '.join(bad)}; compute them "
                "under torch.no_grad() or .detach() them",
            )
    return Verdict(True, f"{len(batches)} batches, no tensor requires grad")


def flat_layout(layout: dict, prefix: str = "") -> dict[str, tuple]:
    """``batch_layout`` by dotted name, as ``runtime.named_tensors`` names a batch's
    tensors: a dict of inputs is written {"inputs": {"x_t": (shape, dtype), ...}}."""
    flat = {}
    for key, value in layout.items():
        name = f"{prefix}.{key}" if prefix else key
        flat.update(flat_layout(value, name) if isinstance(value, dict) else {name: value})
    return flat


def layout_problems(batch: dict, layout: dict) -> list[str]:
    """Where ``batch`` differs from ``data.batch_layout(spec)``: missing or extra
    keys, wrong dtypes, wrong sizes. A string in a shape is a named size (``"batch"``):
    every key of one batch must agree on it. Dicts of inputs are compared key by key
    (``'inputs.t'``)."""
    batch, layout = named_tensors(batch), flat_layout(layout)
    problems = []
    if set(batch) != set(layout):
        missing, extra = sorted(set(layout) - set(batch)), sorted(set(batch) - set(layout))
        problems.append(f"keys {sorted(batch)}; batch_layout says {sorted(layout)}")
        problems[-1] += f" (missing {missing}, extra {extra})"
    named = {}
    for key in sorted(set(batch) & set(layout)):
        shape, dtype = layout[key]
        t = batch[key]
        if t.dtype != dtype:
            problems.append(f"'{key}' is {t.dtype}, batch_layout says {dtype}")
        if t.dim() != len(shape):
            problems.append(f"'{key}' has shape {tuple(t.shape)}, batch_layout says {shape}")
            continue
        for size, want in zip(t.shape, shape, strict=True):
            if isinstance(want, str):
                want = named.setdefault(want, size)  # the first key fixes a named size
            if size != want:
                problems.append(
                    f"'{key}' has shape {tuple(t.shape)}, batch_layout says {shape} with {named}"
                )
                break
    return problems


def layout(batches, expected: dict) -> Verdict:
    for i, batch in enumerate(batches):
        problems = layout_problems(batch, expected)
        if problems:
            return Verdict(False, f"batch {i}: " + "; ".join(problems))
    return Verdict(True, "keys, shapes and dtypes as batch_layout says")


# --- Duplicated rows --------------------------------------------------------------


def _rows(batch: dict[str, torch.Tensor], keys) -> torch.Tensor:
    # ``batch`` here is flat (runtime.named_tensors): one tensor per key.
    """One row per example: all its tensors flattened side by side (float64 holds
    every int32 and float32 value exactly, and int64 up to 2**53)."""
    n = len(batch[keys[0]])
    return torch.cat([batch[key].reshape(n, -1).double() for key in keys], dim=1)


def _equal_pairs(ids: torch.Tensor) -> int:
    """Number of pairs (i < j) with ids[i] == ids[j]."""
    counts = torch.bincount(ids).double()
    return int((counts * (counts - 1) / 2).sum())


def duplicates(batches, split: dict[str, torch.Tensor]) -> Verdict:
    """Rows repeated within a batch no more often than chance allows.

    A sampler that returns one index for the whole batch gives B(B-1)/2 equal pairs
    per batch; an honest one gives about as many as the data's own duplicates do.
    "Chance" is the probability p that two examples drawn at random are equal:
    - where the batch's keys are in the training split too (supervised data), p is
      exact: sum over distinct rows of the split of (its share)^2, which is what a
      sampler drawing with replacement would give (without replacement: fewer;
      augmentation only makes rows more different);
    - otherwise (batches made by collecting, as in RL), p is estimated from pairs of
      rows in *different* batches: an honest sampler repeats rows across batches as
      often as within one, a broken one repeats them within. Continuous observations
      make both ~0. And a stream whose rows are all one row fails outright (the
      same index in every batch would otherwise look like chance).
    Equal pairs within batches must stay below the Poisson-style bound
    n_pairs * p + 4 * sqrt(n_pairs * p + 1).
    """
    if not in_memory(split):  # a Dataset: the chance of a repeat, from a sample of it
        split = examples(split, 4096, torch.Generator().manual_seed(0))
    batches, split = [named_tensors(b) for b in batches], named_tensors(split)
    keys = sorted(batches[0])
    shared = [k for k in keys if k in split and split[k].shape[1:] == batches[0][k].shape[1:]]
    if shared:
        keys = shared  # compare like with like: the same columns in split and batch
    all_rows = torch.cat([_rows(b, keys) for b in batches])
    _, ids = torch.unique(all_rows, dim=0, return_inverse=True)
    per_batch = torch.split(ids, [len(b[keys[0]]) for b in batches])
    n_within = sum(len(i) * (len(i) - 1) // 2 for i in per_batch)
    within = sum(_equal_pairs(i) for i in per_batch)
    if shared:
        _, counts = torch.unique(_rows(split, keys), dim=0, return_counts=True)
        p = float((counts.double() / counts.sum()).pow(2).sum())
        source = f"the training split's own duplicates ({', '.join(keys)})"
    else:
        n_across = sum(len(a) * len(b) for i, a in enumerate(per_batch) for b in per_batch[i + 1 :])
        across = _equal_pairs(ids) - within
        p = across / n_across if n_across else 0.0
        source = "pairs of rows from different batches"
    expected = n_within * p
    allowed = expected + 4 * math.sqrt(expected + 1)
    worst = max(range(len(per_batch)), key=lambda i: _equal_pairs(per_batch[i]))
    repeats = len(per_batch[worst]) - len(per_batch[worst].unique())
    seen = (
        f"{within} equal pairs of rows within {len(batches)} batches "
        f"(batch {worst}: {repeats} of {len(per_batch[worst])} rows repeat another); "
        f"chance: {expected:.3g} (from {source}), allowed up to {allowed:.3g}"
    )
    if len(ids.unique()) == 1 and len(ids) > 1:
        return Verdict(False, f"every row of {len(batches)} batches is the same row; " + seen)
    return Verdict(within <= allowed, seen)


# --- Resuming -----------------------------------------------------------------------


def resume(cfg, split, model, drawn: Drawn) -> Verdict:
    """A fresh stream loaded with the state saved midway through ``drawn`` (its
    generator seeded differently, so that only what is loaded can make it agree)
    must draw the batches the uninterrupted stream drew after that point.

    A stream without ``state_dict`` (a plain generator function, as RL collectors
    often are) is fine if its only memory is the generator and the model; one that
    keeps more (a replay buffer, an epoch position) fails here, as its resumed runs
    would train on other data."""
    expected = drawn.batches[drawn.saved_after :]
    generator, fresh = training_stream(cfg, split, model, seed=cfg.seed + 1)
    if drawn.saved["batches"] is not None:
        fresh.load_state_dict(drawn.saved["batches"])
    set_rng_states(drawn.saved["rng"], generator)
    how = "state_dict + generator" if drawn.saved["batches"] is not None else "generator only"
    for i, (a, b) in enumerate(zip(expected, draw(fresh, len(expected)), strict=True)):
        a, b = named_tensors(a), named_tensors(b)
        if set(a) != set(b):
            return Verdict(False, f"resumed batch {i} has keys {sorted(b)}, not {sorted(a)}")
        differ = [k for k in a if a[k].shape != b[k].shape or not torch.equal(a[k], b[k])]
        if differ:
            return Verdict(
                False,
                f"after a save/load ({how}) batch {drawn.saved_after + i} differs in "
                f"{differ}: the stream remembers something its state_dict does not save "
                "(a position, a buffer, a copy of the model such as a target network), or "
                "draws randomness from outside the generator",
            )
    return Verdict(
        True,
        f"the {len(expected)} batch(es) after a save/load ({how}) equal the uninterrupted ones",
    )


# --- Splits: the same preprocessing everywhere --------------------------------------


def _identifier(t: torch.Tensor) -> bool:
    """An integer per example, all distinct: an index or a seed, not a feature."""
    return t.dim() == 1 and not t.is_floating_point() and len(t.unique()) == len(t)


def _distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """How far apart the statistics of two samples of one tensor are.

    Floats: per feature (channel, for tensors with channels: [N, C, ...]), the
    difference of the means plus that of the stds, averaged over features, in units
    of the overall std of ``a``. Integers (tokens, labels): the total variation
    distance between the value histograms."""
    if not a.is_floating_point():
        low = int(min(a.min(), b.min()))
        size = int(max(a.max(), b.max())) - low + 1
        ha, hb = (torch.bincount(t.flatten() - low, minlength=size).double() for t in (a, b))
        return float((ha / ha.sum() - hb / hb.sum()).abs().sum() / 2)
    a, b = a.double(), b.double()
    if a.dim() >= 3:  # [N, C, ...]: one feature per channel (invariant to shifts)
        a, b = (t.transpose(0, 1).reshape(t.size(1), -1).T for t in (a, b))
    else:
        a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    gap = (a.mean(0) - b.mean(0)).abs() + (a.std(0) - b.std(0)).abs()
    return float(gap.mean() / (a.std() + 1e-12))


# Differences this small are no preprocessing mismatch: label-preserving augmentation
# of the training batches (shifted digits: ~0.06) makes them. A split left
# unnormalised or scaled differently is ~1 train std away.
FLOAT_SLACK = 0.1  # in train stds (mean gap + std gap, averaged over features)
HISTOGRAM_SLACK = 0.05  # total variation distance


def split_statistics(batches, splits, permutations: int = 19, max_rows: int = 1024) -> Verdict:
    """Val and test go through the same preprocessing as the batches training sees.

    The reference is the training batches, not the training split: they are what
    the model learns from (preprocessing done in ``train_batches`` only would leave
    every split alike and evaluation off). For each key that the training batches
    and an evaluation split both have (with the same per-example shape; identifiers
    such as indices and seeds left out), the split's statistics must be about as
    close to the batches' as random re-splits of the two pooled together are to
    each other (a permutation test: at most 1.5 times the largest of
    ``permutations`` re-splits, plus the slack above for augmentation). A split
    left unnormalised, scaled differently or tokenised with another vocabulary is
    far outside that. A split normalised with its own statistics is not: on a
    random split those equal the training ones (the per-type tests check where the
    statistics come from).

    Not applicable where the splits share nothing with the training batches (RL:
    training collects transitions, evaluation splits hold environment seeds).
    """
    batches = [named_tensors(b) for b in batches]
    train = {k: torch.cat([b[k] for b in batches]).cpu() for k in batches[0]}
    generator = torch.Generator().manual_seed(0)
    compared, far = [], []
    for name, split in splits.items():
        if name == "train":
            continue
        if not in_memory(split):  # a Dataset: a sample of it, read
            split = examples(split, max_rows, torch.Generator().manual_seed(1))
        for key, t in named_tensors(split).items():
            if key not in train or t.shape[1:] != train[key].shape[1:] or _identifier(t):
                continue
            if t.is_floating_point() != train[key].is_floating_point():
                continue
            ours = t.cpu()[torch.randperm(len(t), generator=generator)[:max_rows]]
            seen = _distance(train[key], ours)
            pooled = torch.cat([train[key], ours])
            chance = []
            for _ in range(permutations):
                order = torch.randperm(len(pooled), generator=generator)
                a, b = pooled[order[: len(train[key])]], pooled[order[len(train[key]) :]]
                chance.append(_distance(a, b))
            slack = FLOAT_SLACK if t.is_floating_point() else HISTOGRAM_SLACK
            limit = 1.5 * max(chance) + slack
            compared.append(f"{name} '{key}' {seen:.3g} (limit {limit:.3g})")
            if seen > limit:
                far.append(compared[-1])
    if not compared:
        keys = {name: sorted(named_tensors(s)) for name, s in splits.items() if name != "train"}
        return not_applicable(
            f"the evaluation splits ({keys}) share no feature with the training batches "
            f"({sorted(train)}): nothing to compare"
        )
    if far:
        return Verdict(
            False,
            "statistics differ from the training batches' beyond chance: "
            + "; ".join(far)
            + " (is every split preprocessed the same way, with training statistics?)",
        )
    return Verdict(True, "distance to training batches: " + "; ".join(compared))


def targets_follow_examples(cfg, splits, batches, n: int = 64) -> Verdict:
    """Every example keeps its own target: in the training batches and in a sample
    of each split, the targets equal what ``data.source_targets`` reads for the same
    examples from their source, without the Dataset (a label from the file's folder,
    an annotation file).

    A Dataset whose file list is shuffled or sorted apart from its label list, or
    that maps class names to indices per split (a split missing a class shifts
    every index after it), trains on or is scored against other examples' labels:
    the loss still falls, on noise. Not applicable where data.py declares no
    ``source_targets``: there is nothing independent to hold the targets against."""
    source_targets = getattr(paper_data, "source_targets", None)
    if source_targets is None:
        return not_applicable(
            "data.py declares no source_targets(cfg, split_name, examples): nothing "
            "independent of the Dataset to hold each example's target against"
        )
    samples = [("train", named_tensors(batch)) for batch in batches]
    for name, split in splits.items():
        if name != "train":
            samples.append(
                (name, named_tensors(examples(split, n, torch.Generator().manual_seed(0))))
            )
    wrong, counted = [], 0
    for name, sample in samples:
        expected = named_tensors(source_targets(cfg.data, name, sample))
        for key, truth in expected.items():
            got = sample[key].to(truth.device)
            mismatched = int(
                (got.reshape(len(got), -1) != truth.reshape(len(truth), -1)).any(1).sum()
            )
            counted += len(got)
            if mismatched:
                wrong.append(f"{name} '{key}': {mismatched} of {len(got)}")
    if wrong:
        return Verdict(
            False,
            "targets differ from their source's for the same examples: " + "; ".join(wrong),
        )
    return Verdict(
        True, f"{counted} targets of training batches and split samples as at their source"
    )


def evaluation_fixed(splits, n: int = 16) -> Verdict:
    """Every evaluation split read twice gives the same examples, tensor for tensor.

    A random transform left in a Dataset's ``__getitem__`` for every split (a crop,
    a flip, noise), or one drawing from a global generator, makes each validation
    score other examples than the last, and a test number that does not repeat.
    Read twice, the same ``n`` examples must be equal. In-memory tensors are read
    as they are, and cannot differ: the check is not applicable to them."""
    compared, differ = [], []
    for name, split in splits.items():
        if name == "train" or in_memory(split):
            continue
        first, second = (
            named_tensors(examples(split, n, torch.Generator().manual_seed(0))) for _ in range(2)
        )
        compared.append(name)
        changed = [k for k in first if not torch.equal(first[k], second[k])]
        if changed:
            differ.append(f"{name}: {', '.join(changed)}")
    if not compared:
        return not_applicable("every evaluation split is tensors in memory, read as they are")
    if differ:
        return Verdict(
            False,
            f"read twice, {n} examples differ ({'; '.join(differ)}): evaluation examples are "
            "transformed at random (an augmentation applied to every split)",
        )
    return Verdict(True, f"{n} examples of {', '.join(compared)} read twice: identical")


# --- Where preprocessing statistics come from -------------------------------------

STANDARD_TOLERANCE = 1e-4  # float32 arithmetic leaves ~1e-6; a random split misses by ~1e-2


def _moments(split, keys: list[str], max_batch: int = 1024) -> dict:
    """Per float tensor of a split read whole and in order (a Dataset as evaluation
    reads it: no augmentation): count, sum and sum of squares, in float64, over all
    values ("all values") and per channel ("per channel": dim 1, a feature of
    [N, F] or a channel of [N, C, ...])."""
    totals: dict = {}
    for batch in in_order(split, max_batch):
        named = named_tensors(batch)
        for key in keys:
            t = named[key].detach().double().cpu()
            views = {"all values": t.reshape(1, -1)}
            if t.dim() >= 2:
                views["per channel"] = t.transpose(0, 1).reshape(t.size(1), -1)
            for how, v in views.items():
                n, s, q = totals.get((key, how), (0, 0.0, 0.0))
                totals[key, how] = (n + v.size(1), s + v.sum(1), q + (v * v).sum(1))
    return totals


def _standardised(n: int, total: torch.Tensor, squares: torch.Tensor) -> bool:
    """Mean 0 and std 1 (or 0: a constant feature scaled to 0) in every component,
    std 1 in at least one; the std with or without Bessel's correction."""
    mean = total / n
    variance = (squares / n - mean**2).clamp(min=0)
    stds = [variance.sqrt(), (variance * n / max(n - 1, 1)).sqrt()]
    tol = STANDARD_TOLERANCE
    for std in stds:
        one, zero = (std - 1).abs() < tol, std < tol
        if (mean.abs() < tol).all() and (one | zero).all() and one.any():
            return True
    return False


def statistics_from_train(splits, max_examples: int = 200_000) -> Verdict:
    """The statistics preprocessing standardises with (a mean and a std) come from
    the training split only.

    Standardised with the training split's own mean and std, the training split's
    values have mean exactly 0 and std exactly 1 (up to float rounding), per channel
    or over all values, while val's and test's are only close. Statistics taken from
    the test split, or from all the data, make *that* set exact instead: a leak of
    the evaluation data into preprocessing, which inflates the score a little and
    never shows in training. Every split and every union of splits is read whole
    (Datasets in order, without augmentation) and tested for exactness, for every
    float tensor; the check fails when some set other than the training split is
    exactly standardised and the training split is not.

    Not applicable when no set is standardised exactly (no standardisation, fixed
    constants such as ImageNet's, a scaling to [-1, 1]): there are no statistics to
    trace; or when the splits are too large to read whole here."""
    probe = {
        name: named_tensors(examples(split, 2) if not in_memory(split) else split)
        for name, split in splits.items()
    }
    keys = [k for k, t in probe["train"].items() if t.is_floating_point()]
    keys = [
        k
        for k in keys
        if all(k in named and named[k].is_floating_point() for named in probe.values())
    ]
    if not keys:
        return not_applicable("no float tensor in every split: no statistics to standardise with")
    total = sum(num_examples(split) for split in splits.values())
    if total > max_examples:
        return not_applicable(f"{total} examples: too many to read whole in a check")
    moments = {name: _moments(split, keys) for name, split in splits.items()}
    names = list(splits)
    unions = [c for r in range(1, len(names) + 1) for c in itertools.combinations(names, r)]
    # Per tensor: the sets it is standardised exactly over (each key on its own: the
    # inputs may leak while a standardised regression target does not).
    exact: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for union in unions:
        for key, how in moments[names[0]]:
            parts = [moments[name][key, how] for name in union]
            n = sum(p[0] for p in parts)
            if _standardised(n, sum(p[1] for p in parts), sum(p[2] for p in parts)):
                exact.setdefault(key, []).append((union, how))
    for key, found in exact.items():
        if not any(union == ("train",) for union, _ in found):
            union, how = found[0]
            source = " + ".join(union)
            return Verdict(
                False,
                f"'{key}' is standardised exactly ({how}) over {source}, not over train: its "
                f"mean and std were computed on {source} (compute them on the training split "
                "only and apply them unchanged to val and test)",
            )
    if exact:
        found = [
            f"'{key}' {how}"
            for key, sets in exact.items()
            for union, how in sets
            if union == ("train",)
        ]
        return Verdict(True, "the training split is standardised exactly: " + ", ".join(found))
    return not_applicable(
        f"no split or union of splits has {', '.join(repr(k) for k in keys)} at mean 0 and "
        "std 1 exactly: no statistics to trace (no standardisation, or fixed constants)"
    )


# --- Training on real batches --------------------------------------------------------


def baseline_steps(cfg) -> int:
    """Steps of the input-baseline runs: a tenth of the configured run (by then a
    model that uses its inputs is clearly ahead: every example type is at 100
    steps, where the reversal transformer's sequence accuracy is still 0 for both
    at 50), at most 1000 steps."""
    return max(1, min(cfg.trainer.max_steps // 10, 1000))


def zeroed(inputs):
    """What the input-independent baseline feeds the model instead of ``inputs``.

    A tensor: zeros of its shape and dtype (token ids become token 0). A dict of
    inputs: its floating-point tensors zeroed, its integer ones kept. Those are
    conditions (a diffusion time step, a class label) without which a blind model
    could not even be asked the right question: zeroing t was a real bug report
    (every example became a t=0 example). Only when every input is an integer
    (tokens and a mask) is everything zeroed, as for a lone tensor."""
    leaves = named_tensors(inputs).values()
    keep_integers = any(t.is_floating_point() for t in leaves)

    def zero(t: torch.Tensor) -> torch.Tensor:
        return t if keep_integers and not t.is_floating_point() else torch.zeros_like(t)

    return map_tensors(zero, inputs)


def zero_inputs(model: torch.nn.Module) -> torch.nn.Module:
    """Make ``model`` blind: a forward pre-hook replaces its inputs by ``zeroed(inputs)``
    in training and evaluation alike."""
    model.register_forward_pre_hook(lambda module, args: (zeroed(args[0]), *args[1:]))
    return model


def short_run(cfg, model, split, val, steps: int) -> float:
    """Train ``model`` for ``steps`` steps on real training batches with the
    project's optimiser and loss (constant LR, gradients clipped as configured) and
    return the validation headline metric."""
    from ..eval import evaluate  # imports Hydra; only here

    players = optimisers(model, cfg)
    _, batches = training_stream(cfg, split, model)
    loss_cfg = plain(cfg.loss)
    model.train()
    for _ in range(steps):
        step_players(model, players, next(batches), loss_cfg, clip=True)
    # With the config: the headline may be a split-level metric (loss.split_metrics).
    return evaluate(model, val, cfg.trainer.eval_batch_size, cfg)[HEADLINE_METRIC]


def input_baseline(cfg, make_model, split, val, steps: int) -> Verdict:
    """After ``steps`` steps on real batches the model must beat the same model,
    trained the same steps, with its inputs zeroed (Karpathy's input-independent
    baseline), on the validation headline metric. Equal: the model learns nothing
    from its inputs (a detached input path, inputs the loss never sees, targets
    that do not depend on the inputs)."""
    real = short_run(cfg, make_model(), split, val, steps)
    blind = short_run(cfg, zero_inputs(make_model()), split, val, steps)
    better = real > blind if HEADLINE_MODE == "max" else real < blind
    return Verdict(
        better and math.isfinite(real),
        f"val {HEADLINE_METRIC} after {steps} steps: {real:.4g} with real inputs, "
        f"{blind:.4g} with zeroed inputs ({HEADLINE_MODE} is better)",
        value=real,
    )


# --- A result too good to be true ---------------------------------------------------


def paper_number(references: list[dict]) -> tuple[float, float] | None:
    """The paper's own value of the headline metric and its tolerance: the first
    ``number`` claim of reference_numbers.yaml on it (on any split: ``test/bpc`` or
    ``bpc``); None when there is none."""
    for ref in references:
        metric = str(ref.get("metric", ""))
        if (
            "paper" in ref
            and "ablation" not in ref
            and metric.rpartition("/")[2] == HEADLINE_METRIC
        ):
            return float(ref["paper"]), float(ref.get("tolerance", 0.0))
    return None


def too_good(
    value: float, steps: int, paper: tuple[float, float] | None, baselines=None
) -> Verdict:
    """After a short run (``steps`` steps: the input baseline's, a tenth of the
    configured run), the validation headline ``value`` must not be better than the
    paper's own number beyond its tolerance.

    The paper's number took the whole method and a whole run; a tenth of the run
    that beats it has learnt what no model can: the targets leaked into the inputs
    (not shifted), a mask that lets a position see the future, val text in the
    training split. Measured on the language model (paper 2.25 bits per character):
    100 steps give 4.2 on correct code, 0.004 with unshifted targets and 1.5 with a
    mask that shows each position its next character. The declared baselines
    (``loss.baselines``) are reported beside it, not used as the bound: they are
    scored on the same targets, and a leak breaks them too (with unshifted targets
    the bigram got worse, which would have widened a bound built on it).

    Not applicable without a number claim on the headline in reference_numbers.yaml."""
    if paper is None:
        return not_applicable(
            f"reference_numbers.yaml has no number claim on {HEADLINE_METRIC} (`metric: "
            "test/<headline>, paper: ..., tolerance: ...`): nothing says what is possible"
        )
    number, tolerance = paper
    sign = 1 if HEADLINE_MODE == "max" else -1  # sign * x: larger is better
    limit = number + sign * tolerance
    beside = ", ".join(f"{name} {v:.4g}" for name, v in (baselines or {}).items())
    return Verdict(
        sign * (value - limit) <= 0 and math.isfinite(value),
        f"val {HEADLINE_METRIC} after {steps} steps: {value:.4g}, against the paper's "
        f"{number:.4g} +- {tolerance:.3g} after the whole run"
        + (f" (baselines: {beside})" if beside else ""),
    )


def model_dependence(cfg, split, make_model) -> str | None:
    """Why training batches depend on the model's weights, or None when they do
    not: one batch drawn with two differently initialised models, from the same
    generator state. Batches made by the model (on-policy rollouts, TD targets,
    bootstrapped returns) make checks on a fixed batch (the LR range test) say
    little about training."""
    (a,), (b,) = (draw(training_stream(cfg, split, make_model(seed))[1], 1) for seed in (0, 1))
    a, b = named_tensors(a), named_tensors(b)
    differ = sorted(k for k in a if a[k].shape != b[k].shape or not torch.equal(a[k], b[k]))
    if not differ:
        return None
    if not any(k == "inputs" or k.startswith("inputs.") for k in differ):
        return f"the training targets ({', '.join(differ)}) are computed with the model itself"
    return (
        f"the training batches ({', '.join(differ)}) change with the model's weights "
        "(collected by the model, or targets computed with it)"
    )
