"""Numbers match? Check a run, a seed sweep or an ablation sweep against the paper.

    python -m {{ cookiecutter.package_name }}.judge.compare runs/<date>/<time>               # one run (after eval)
    python -m {{ cookiecutter.package_name }}.judge.compare runs/sweeps/seeds/<time>         # -m sweep=seeds
    python -m {{ cookiecutter.package_name }}.judge.compare runs/sweeps/ablation/<time>      # -m sweep=ablation seed=range(3)
    python -m {{ cookiecutter.package_name }}.judge.compare <dir> --references reference_numbers.yaml

Reads ``reference_numbers.yaml`` and each run's ``metrics.json`` and
``eval_<split>.json`` (written by eval.py, or by the sweep's own test evaluation;
its metrics count as ``<split>/<name>``). Four kinds of entry (the file's header
says how to write each):
    number   the paper's value within a tolerance        paper: 0.99, tolerance: 0.01
    bound    at least / at most a value                  at_least: 0.98
    effect   removing a component (configs/ablation/<name>) lowers or raises a metric
             by at least d, against the full model        ablation: no_kl, raises_by: 5
    order    A beats B on a metric: two sweep points, or two metrics of the same runs
             (e.g. the method and a baseline it must beat by d)

With several seeds, each row shows our mean +- std (n), a 95% interval and a verdict:
    matches / holds   the whole interval is on the right side of the tolerance or bound
    OFF / FAILS       the whole interval is on the wrong side
    inconclusive      the interval straddles it: the row says roughly how many seeds
                      would settle it (at the spread seen so far)
With one run there is no interval, and the verdict is that run's value.

Exit status (a CI job can gate on it): 0 when every row matches or holds; 1 when a
row is off, fails or its metric is missing; 3 when the only problem is an
inconclusive row (run more seeds); 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..engine.run_log import reported_checkpoint
from ..engine.stats import DIFFERENCE_METHOD, METHOD, Interval, difference_interval, mean_interval
from ..engine.stats import seeds_to_fit as _seeds_to_fit
from .runs import find_jobs, job_overrides, run_metrics, varying_keys

DEFAULT_REFERENCES = Path("reference_numbers.yaml")
INCONCLUSIVE = 3  # exit status when the only problem is an inconclusive row
FULL_MODEL = "none"  # the ablation that switches nothing off (configs/ablation/none.yaml)
PAIRED_METHOD = "95% t-interval of the per-seed differences (two metrics of the same runs)"


@dataclass
class Runs:
    """The finished runs of a directory, by sweep point (the ``ablation`` each ran;
    ``none`` for the full model, and for a plain run or seed sweep), each a list of
    one metrics dict per seed; and notes on the jobs left out."""

    points: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sweep: bool = False


@dataclass
class Result:
    """One checked entry of the references file."""

    kind: str  # number, bound, effect, order
    claim: str  # what is claimed, in words
    where: str
    verdict: str  # matches, OFF, holds, FAILS, inconclusive, missing, not checked
    estimate: Interval | None = None  # ours: mean (or difference) over seeds
    needed: int | None = None  # seeds that would settle an inconclusive row
    paper: float | None = None
    tolerance: float | None = None
    method: str = METHOD
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict in ("matches", "holds", "not checked")


def load_runs(path: Path) -> Runs:
    """A run directory, or a sweep directory of seeds and/or ablations."""
    path = Path(path)
    jobs = find_jobs(path)
    if not jobs:
        return Runs(points={FULL_MODEL: [run_metrics(path)]})
    runs = Runs(sweep=True)
    for job in jobs:
        values = job_overrides(job)
        if (job / "diverged.json").is_file():
            runs.notes.append(f"job {job.name} ({_describe(values)}) diverged: left out")
        elif not (job / "metrics.json").is_file():
            runs.notes.append(f"job {job.name} ({_describe(values)}) did not finish: left out")
        else:
            runs.points.setdefault(values.get("ablation", FULL_MODEL), []).append(run_metrics(job))
    return runs


def check_sweep_kind(path: Path) -> str | None:
    """Why ``path`` cannot be compared (a sweep over something other than seeds and
    ablations pools different settings as if they were seeds), or None."""
    jobs = find_jobs(path)
    if not jobs:
        return None
    other = [k for k in varying_keys(jobs) if k not in ("seed", "ablation")]
    if other:
        return (
            f"{path} sweeps {', '.join(other)}: compare reads one run, a seed sweep "
            "(-m sweep=seeds) or an ablation sweep (-m sweep=ablation seed=range(3))"
        )
    return None


def values_of(runs: Runs, point: str, metric: str) -> list[float]:
    return [m[metric] for m in runs.points.get(point, []) if math.isfinite(m.get(metric, math.nan))]


def judge_at_least(estimate: Interval, threshold: float, single: bool, groups: int = 1):
    """Verdict (True, False or None for inconclusive) on "estimate >= threshold", and
    the seeds that would settle an inconclusive one."""
    if single or math.isnan(estimate.low):
        return estimate.mean >= threshold, None
    if estimate.low >= threshold:
        return True, None
    if estimate.high < threshold:
        return False, None
    # One seed's spread: a difference of two groups carries its standard error.
    spread = estimate.std if groups == 1 else estimate.std * math.sqrt(estimate.n / groups)
    return None, _seeds_to_fit(spread, abs(estimate.mean - threshold), groups)


def check_number(ref: dict, runs: Runs) -> Result:
    metric, paper, tolerance = ref["metric"], float(ref["paper"]), float(ref["tolerance"])
    result = Result(
        "number", metric, ref.get("where", ""), "missing", paper=paper, tolerance=tolerance
    )
    values = values_of(runs, FULL_MODEL, metric)
    if not values:
        return result
    result.estimate = estimate = mean_interval(values)
    distance = abs(estimate.mean - paper)
    if len(values) == 1:
        result.verdict = "matches" if distance <= tolerance else "OFF"
    elif paper - tolerance <= estimate.low and estimate.high <= paper + tolerance:
        result.verdict = "matches"
    elif estimate.high < paper - tolerance or estimate.low > paper + tolerance:
        result.verdict = "OFF"
    else:
        result.verdict = "inconclusive"
        # Seeds until the interval fits on one side of the nearer tolerance edge.
        result.needed = _seeds_to_fit(estimate.std, abs(tolerance - distance))
    return result


def check_claim(ref: dict, runs: Runs) -> Result:
    """A bound, effect or order entry: a difference (or a value) that must be at
    least a threshold."""
    if "at_least" in ref or "at_most" in ref:
        return check_bound(ref, runs)
    if "ablation" in ref:
        return check_effect(ref, runs)
    if "order" in ref:
        return check_order(ref, runs)
    raise ValueError(
        f"reference entry {ref} is none of: paper+tolerance, at_least/at_most, "
        "ablation+lowers_by/raises_by, order"
    )


def check_bound(ref: dict, runs: Runs) -> Result:
    """``metric`` at least (or at most) a value, on the full model's runs."""
    where = ref.get("where", "")
    above = "at_least" in ref
    threshold = float(ref["at_least"] if above else ref["at_most"])
    metric = ref["metric"]
    claim = f"{metric} {'>=' if above else '<='} {threshold:g}"
    values = values_of(runs, FULL_MODEL, metric)
    if not values:
        return Result("bound", claim, where, "missing")
    estimate = mean_interval(values)
    # "at most X" is "-value >= -X": judged by the same rule.
    signed = estimate if above else _negated(estimate)
    verdict, needed = judge_at_least(signed, threshold if above else -threshold, len(values) == 1)
    return _result("bound", claim, where, verdict, estimate, needed, METHOD)


def check_effect(ref: dict, runs: Runs) -> Result:
    """Switching ``ablation`` on lowers (or raises) ``metric`` by at least ``by``."""
    where = ref.get("where", "")
    ablation, metric = ref["ablation"], ref["metric"]
    lowers = "lowers_by" in ref
    by = float(ref["lowers_by"] if lowers else ref["raises_by"])
    change = "lowers" if lowers else "raises"
    claim = f"ablation={ablation} {change} {metric} by >= {by:g} (vs the full model)"
    full, ablated = values_of(runs, FULL_MODEL, metric), values_of(runs, ablation, metric)
    if not full or not ablated:
        return _not_there("effect", claim, where, runs, [ablation])
    # lowers: full - ablated >= by; raises: ablated - full >= by
    estimate = difference_interval(full, ablated) if lowers else difference_interval(ablated, full)
    single = min(len(full), len(ablated)) == 1
    verdict, needed = judge_at_least(estimate, by, single, groups=2)
    return _result("effect", claim, where, verdict, estimate, needed, DIFFERENCE_METHOD)


def check_order(ref: dict, runs: Runs) -> Result:
    """``first`` beats ``second`` by at least ``by``: two sweep points on one metric,
    or two metrics of the same runs (the method and a baseline), paired by seed."""
    where = ref.get("where", "")
    first, second = ref["order"]
    better = ref.get("better", "higher")
    if better not in ("higher", "lower"):
        raise ValueError(f"better: must be higher or lower, not {better!r} ({ref})")
    by = float(ref.get("by", 0.0))
    sign = 1 if better == "higher" else -1
    if "metric" in ref:  # two sweep points (ablations) on one metric
        metric = ref["metric"]
        claim = f"{first} beats {second} on {metric} ({better} is better) by >= {by:g}"
        a, b = values_of(runs, first, metric), values_of(runs, second, metric)
        if not a or not b:
            return _not_there("order", claim, where, runs, [first, second])
        estimate = difference_interval(a, b) if sign > 0 else difference_interval(b, a)
        single, groups, method = min(len(a), len(b)) == 1, 2, DIFFERENCE_METHOD
    else:
        claim = f"{first} beats {second} ({better} is better) by >= {by:g}"
        pairs = [
            sign * (m[first] - m[second])
            for m in runs.points.get(FULL_MODEL, [])
            if math.isfinite(m.get(first, math.nan)) and math.isfinite(m.get(second, math.nan))
        ]
        if not pairs:
            return Result("order", claim, where, "missing")
        estimate = mean_interval(pairs)
        single, groups, method = len(pairs) == 1, 1, PAIRED_METHOD
    verdict, needed = judge_at_least(estimate, by, single, groups=groups)
    return _result("order", claim, where, verdict, estimate, needed, method)


def check(references: list[dict], runs: Runs) -> list[Result]:
    return [check_number(r, runs) if "paper" in r else check_claim(r, runs) for r in references]


def exit_status(results: list[Result]) -> int:
    if any(r.verdict in ("OFF", "FAILS", "missing") for r in results):
        return 1
    if any(r.verdict == "inconclusive" for r in results):
        return INCONCLUSIVE
    return 0


def number_table(results: list[Result]) -> list[str]:
    rows = [
        "| Metric | Paper | Ours | Difference | 95% CI | Tolerance | Where in the paper | Verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.kind != "number":
            continue
        ours = diff = ci = ""
        if r.estimate is not None:
            ours, ci = ours_text(r.estimate), ci_text(r.estimate)
            diff = f"{r.estimate.mean - r.paper:+.4g}"
        rows.append(
            f"| {r.claim} | {r.paper:.4g} | {ours or 'missing'} | {diff} | {ci} | "
            f"±{r.tolerance:.4g} | {r.where} | {verdict_text(r)} |"
        )
    return rows


def claim_table(results: list[Result]) -> list[str]:
    rows = [
        "| Claim | Kind | Measured | 95% CI | Where in the paper | Verdict |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.kind == "number":
            continue
        measured = ours_text(r.estimate) if r.estimate is not None else ""
        ci = ci_text(r.estimate) if r.estimate is not None else ""
        rows.append(f"| {r.claim} | {r.kind} | {measured} | {ci} | {r.where} | {verdict_text(r)} |")
    return rows


def methods(results: list[Result]) -> list[str]:
    used = dict.fromkeys(r.method for r in results if r.estimate is not None and r.estimate.n > 1)
    return [f"CI: {m}" for m in used]


def report_lines(results: list[Result], runs: Runs) -> list[str]:
    """Both tables (each only when it has rows), the interval methods and the notes."""
    lines = []
    numbers, claims = number_table(results), claim_table(results)
    if len(numbers) > 2:
        lines += numbers
    if len(claims) > 2:
        lines += ["", *claims] if lines else claims
    lines += ["", *methods(results)] if methods(results) else []
    lines += [f"note: {note}" for note in runs.notes]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run, seed-sweep or ablation-sweep directory")
    parser.add_argument("--references", type=Path, default=DEFAULT_REFERENCES)
    parser.add_argument("--json", type=Path, help="also write the rows to this file, as JSON")
    args = parser.parse_args(argv)
    if not args.references.is_file():
        print(
            f"error: no reference file {args.references}; pass --references <file>", file=sys.stderr
        )
        return 2
    if not args.run_dir.is_dir():
        print(f"error: {args.run_dir} is not a run directory", file=sys.stderr)
        return 2
    problem = check_sweep_kind(args.run_dir)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    runs = load_runs(args.run_dir)
    results = check(yaml.safe_load(args.references.read_text()) or [], runs)
    print("\n".join(report_lines(results, runs)))
    if args.json:
        args.json.write_text(json.dumps([as_record(r) for r in results], indent=2) + "\n")
    status = exit_status(results)
    if any(r.verdict == "missing" for r in results):
        print(
            "\nmissing: run eval.py on the checkpoint first "
            f"(python -m {__package__.rpartition('.')[0]}.eval ckpt_path={reported_checkpoint(args.run_dir)}), "
            "or sweep with sweep=seeds / sweep=ablation, which evaluate the test split",
            file=sys.stderr,
        )
    if status == 1:
        print("\nOFF / FAILS: outside the tolerance or bound", file=sys.stderr)
    elif status == INCONCLUSIVE:
        print(
            f"\ninconclusive (exit {INCONCLUSIVE}): the interval straddles the tolerance or "
            "bound; add seeds (seed=range(N)) as the rows say",
            file=sys.stderr,
        )
    return status


def as_record(result: Result) -> dict:
    """A row as plain data (``--json``): the claim, the verdict and the estimate."""
    record = {"kind": result.kind, "claim": result.claim, "where": result.where,
              "verdict": result.verdict, "ours": ours_text(result.estimate) if result.estimate else "",
              "interval": ci_text(result.estimate) if result.estimate else "", "method": result.method}  # fmt: skip
    if result.estimate is not None:
        record.update(mean=result.estimate.mean, std=result.estimate.std, n=result.estimate.n)
    return record


def _result(kind, claim, where, verdict, estimate, needed, method) -> Result:
    words = {True: "holds", False: "FAILS", None: "inconclusive"}
    return Result(kind, claim, where, words[verdict], estimate, needed, method=method)


def _not_there(kind: str, claim: str, where: str, runs: Runs, points: list[str]) -> Result:
    """A claim about sweep points the directory does not hold: missing in an
    ablation sweep (the point should be there), not checked elsewhere (a plain run
    or seed sweep holds only the full model)."""
    ablation_sweep = any(p != FULL_MODEL for p in runs.points)
    if ablation_sweep:
        absent = [p for p in points if p not in runs.points]
        return Result(kind, claim, where, "missing", detail=f"no finished run of {absent}")
    return Result(
        kind, claim, where, "not checked",
        detail="needs an ablation sweep: -m sweep=ablation seed=range(3)",
    )  # fmt: skip


def _negated(estimate: Interval) -> Interval:
    return Interval(-estimate.mean, estimate.std, estimate.n, -estimate.high, -estimate.low)


def ours_text(estimate: Interval) -> str:
    if estimate.n == 1 or math.isnan(estimate.std):
        return f"{estimate.mean:.4g}"
    return f"{estimate.mean:.4g} ± {estimate.std:.2g} (n={estimate.n})"


def ci_text(estimate: Interval) -> str:
    if math.isnan(estimate.low):
        return "n/a (1 run)"
    return f"[{estimate.low:.4g}, {estimate.high:.4g}]"


def verdict_text(result: Result) -> str:
    if result.verdict == "inconclusive":
        more = (
            f"~{result.needed} seeds would settle it"
            if result.needed
            else "more seeds will not settle it (on the boundary)"
        )
        return f"inconclusive: {more}"
    if result.detail:
        return f"{result.verdict}: {result.detail}"
    return result.verdict


def _describe(values: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items() if k in ("seed", "ablation")) or "-"


if __name__ == "__main__":
    sys.exit(main())
