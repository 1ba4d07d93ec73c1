"""Sweep summaries: one table, one CSV and one plot per Hydra multirun.

    python -m {{ cookiecutter.package_name }}.train -m sweep=lr         # LR range, 1e-5 .. 1e-1
    python -m {{ cookiecutter.package_name }}.train -m sweep=ablation   # one component off per job
    python -m {{ cookiecutter.package_name }}.train -m sweep=seeds      # the same run, seeds 0, 1, 2
    python -m {{ cookiecutter.package_name }}.train -m sweep=ablation seed=0,1,2  # ablations x seeds
    python -m {{ cookiecutter.package_name }}.judge.sweeps <sweep dir>        # (re)write a summary by hand

Hydra's basic sweeper discards what each job returns, so every job leaves its
numbers in its own directory (metrics.json, metrics.jsonl, eval_test.json,
diverged.json) and ``SweepSummary`` (a Hydra callback, configured in
configs/sweep/*.yaml) reads them all when the sweep ends and writes into the
sweep directory:
    summary.md    the jobs, best point marked, the rules used, warnings (best LR at the edge)
    summary.csv   one row per job, for a spreadsheet or pandas
    seeds.csv     with several seeds per point: per point and metric, each seed's
                  value, mean, std, min, max and the 95% interval (stats.METHOD)
    summary.png   several seeds: each seed's curves and their mean; otherwise the
                  final train loss and validation metric against a numeric swept value

Noisy metrics (RL returns, a GAN's sample quality) swing between evaluations, so a
job is ranked by the mean of its last ``last_k`` validation evaluations, and a point
with several seeds by the mean of its seeds. A job counts as diverged when the NaN
guard stopped it, or when its final train loss is not finite or more than
``diverge_factor`` times its best: a loss that merely rises (an RL value loss as
returns grow) is not a divergence, a TD loss of 2e7 is.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
from pathlib import Path

from hydra.experimental.callback import Callback

from ..engine.run_log import first_train_loss, read_jsonl, reported_checkpoint
from ..engine.stats import METHOD, mean_interval
from ..loss import HEADLINE_METRIC, HEADLINE_MODE
from .runs import find_jobs, job_overrides, run_metrics, varying_keys

log = logging.getLogger(__name__)

HEADLINE = f"val/{HEADLINE_METRIC}"
LAST_K = 3
DIVERGE_FACTOR = 100.0
# Numbers in metrics.json that describe the run, not the result.
BOOKKEEPING = {"step", "eval_seconds", "world_size", "ranks_agree"}


def score_name(last_k: int) -> str:
    return f"{HEADLINE} (last {last_k})"


def divergence_rule(factor: float) -> str:
    return (
        "diverged = stopped by the NaN guard, or a final train loss that is not finite "
        f"or more than {factor:g}x its best (lowest) logged value"
    )


def ranking_rule(last_k: int) -> str:
    direction = "highest" if HEADLINE_MODE == "max" else "lowest"
    return (
        f"ranked by {score_name(last_k)}: the mean of the last {last_k} validation "
        f"evaluations ({direction} is best), averaged over seeds where a point has several"
    )


def diverged_reason(losses: list[float], factor: float) -> str | None:
    """Why a train-loss history counts as diverged, or None."""
    if not losses:
        return None
    last = losses[-1]
    if not math.isfinite(last):
        return f"final train loss {last}"
    best = min(v for v in losses if math.isfinite(v))
    # Growth over the best; a loss that can be negative grows against the larger
    # of |best| and |first| instead (a ratio to a negative number means nothing).
    scale = best if best > 0 else max(abs(best), abs(losses[0]), 1e-12)
    if last - best > (factor - 1) * scale:
        return (
            f"final train loss {last:.4g} is {(last - best) / scale + 1:.3g}x its best {best:.4g}"
        )
    return None


def job_row(
    job_dir: Path,
    swept: list[str],
    last_k: int = LAST_K,
    diverge_factor: float = DIVERGE_FACTOR,
    columns: tuple[str, ...] = (),
) -> dict:
    """One job's swept values and results. A job that never finished counts as
    unfinished; one the NaN guard stopped or whose loss grew ``diverge_factor``-fold
    over its best counts as diverged (``divergence_rule``)."""
    values = job_overrides(job_dir)
    row = {key: _number(values.get(key, "none" if key == "ablation" else "")) for key in swept}
    records = read_jsonl(job_dir / "metrics.jsonl")
    loss_key = first_train_loss(records)  # with players, the first player's
    losses = [r[loss_key] for r in records if loss_key in r]
    done = (job_dir / "metrics.json").is_file()
    final = run_metrics(job_dir) if done else {}
    row["train_loss"] = final.get(loss_key, math.nan)
    row[HEADLINE] = final.get(HEADLINE, math.nan)
    # The validation evaluations after initialisation (step 0 is the untrained model).
    evaluations = [r[HEADLINE] for r in records if HEADLINE in r and r["step"] > 0]
    recent = evaluations[-last_k:] or [row[HEADLINE]]
    row[score_name(last_k)] = sum(recent) / len(recent) if done else math.nan
    for column in columns:
        row[column] = final.get(column, math.nan)
    stopped = (job_dir / "diverged.json").is_file()
    reason = "stopped by the NaN guard" if stopped else diverged_reason(losses, diverge_factor)
    row["diverged"] = reason is not None
    row["why"] = reason or ""
    row["status"] = "diverged" if row["diverged"] else ("done" if done else "unfinished")
    row["job"] = job_dir.name
    row["metrics"] = final  # everything, for the statistics over seeds
    return row


def summarise_sweep(
    sweep_dir: Path,
    swept: list[str],
    plot: bool = True,
    last_k: int = LAST_K,
    diverge_factor: float = DIVERGE_FACTOR,
    columns: tuple[str, ...] | list[str] = (),
) -> list[dict]:
    """Write summary.md, summary.csv, seeds.csv (several seeds per point) and
    (``plot``) summary.png for the jobs under ``sweep_dir``."""
    sweep_dir = Path(sweep_dir)
    jobs = find_jobs(sweep_dir)
    # The configured keys, and whatever else the command line swept (seed=0,1,2).
    swept = list(swept) + [k for k in varying_keys(jobs) if k not in swept]
    columns = tuple(columns)
    rows = [job_row(job, swept, last_k, diverge_factor, columns) for job in jobs]
    score = score_name(last_k)
    point_keys = [k for k in swept if k != "seed"]
    points = group_points(rows, point_keys)
    seeded = "seed" in swept and any(len(group) > 1 for group in points.values())
    best = best_point(points, score)
    warnings = edge_warnings(points, best, point_keys)
    for warning in warnings:
        log.warning("%s", warning)

    table = [*swept, "train_loss", HEADLINE, score, *columns, "status", "job"]
    if "ablation" in swept and add_change_vs_full(rows, score):
        table.insert(table.index(score) + 1, "change vs none")
    with open(sweep_dir / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*table, "why"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)

    lines = [
        f"# Sweep over {', '.join(swept)}: {len(rows)} jobs",
        "",
        f"Best: {ranking_rule(last_k)}. D{divergence_rule(diverge_factor)[1:]}.",
        "",
    ]
    body = []
    for row in rows:
        cells = [_cell(row[c]) for c in table]
        if best is not None and len(points) > 1 and point_of(row, point_keys) == best:
            cells[-1] += " **best**"
        body.append(cells)
    lines += markdown_table(table, body)
    lines += ["", *[f"> {r['job']}: {r['why']}" for r in rows if r["why"]]]
    if seeded:
        lines += seed_sections(points, point_keys, score, best, sweep_dir)
    lines += ["", *[f"> warning: {w}" for w in warnings]]
    (sweep_dir / "summary.md").write_text("\n".join(lines).rstrip() + "\n")
    if plot and rows:
        draw_summary(sweep_dir, rows, points, point_keys, seeded)
    return rows


def best_point(points: dict[tuple, list[dict]], score: str) -> tuple | None:
    """The point with the best mean score over its seeds (among equals, the lower
    train loss); None when no job finished."""
    sign = 1 if HEADLINE_MODE == "max" else -1
    ranked = {
        point: (_mean([r[score] for r in group]), _mean([r["train_loss"] for r in group]))
        for point, group in points.items()
        if any(r["status"] == "done" for r in group)
    }
    return max(ranked, key=lambda p: (sign * ranked[p][0], -ranked[p][1]), default=None)


def add_change_vs_full(rows: list[dict], score: str) -> bool:
    """Ablations: each job's score minus that of the full model ("none") of its seed,
    as ``row["change vs none"]``. False when the sweep has no full model."""
    full = {r.get("seed"): r for r in rows if r["ablation"] == "none"}
    for row in rows if full else []:
        baseline = full.get(row.get("seed"))
        row["change vs none"] = row[score] - baseline[score] if baseline else math.nan
    return bool(full)


def draw_summary(sweep_dir: Path, rows, points, point_keys, seeded: bool) -> None:
    """summary.png: each seed's curves and their mean per point, or (one seed) the
    results against the first numeric swept value; nothing when there is neither."""
    numeric = [key for key in point_keys if all(isinstance(r[key], float) for r in rows)]
    if seeded:
        from ..engine.plots import plot_seeds  # matplotlib, only now

        curves = {
            label_of(point, point_keys): [
                read_jsonl(sweep_dir / r["job"] / "metrics.jsonl") for r in group
            ]
            for point, group in points.items()
        }
        plot_seeds(curves, HEADLINE_METRIC, sweep_dir / "summary.png")
    elif numeric:
        from ..engine.plots import plot_sweep  # matplotlib, only now

        plot_sweep(rows, numeric[0], HEADLINE_METRIC, sweep_dir / "summary.png")


def group_points(rows: list[dict], point_keys: list[str]) -> dict[tuple, list[dict]]:
    """Jobs that differ only in their seed, together, in job order."""
    points: dict[tuple, list[dict]] = {}
    for row in rows:
        points.setdefault(point_of(row, point_keys), []).append(row)
    return points


def point_of(row: dict, point_keys: list[str]) -> tuple:
    return tuple(row[k] for k in point_keys)


def label_of(point: tuple, point_keys: list[str]) -> str:
    if not point_keys:
        return "all seeds"
    return ", ".join(f"{k}={_cell(v)}" for k, v in zip(point_keys, point, strict=True))


def seed_statistics(group: list[dict], score: str) -> dict[str, dict]:
    """Per metric of the finished jobs in ``group``: each seed's value, mean, std,
    min, max and the Student-t interval."""
    done = [r for r in group if r["status"] == "done"]
    # The ranking score first, then test, validation and the rest (train/loss, timings).
    order = {"test": 0, "val": 1}
    found = {k for r in done for k in r["metrics"]} - BOOKKEEPING
    names = [score, *sorted(found, key=lambda k: (order.get(k.split("/")[0], 2), k))]
    table = {}
    for name in names:
        values = {
            r.get("seed", r["job"]): (r[score] if name == score else r["metrics"].get(name))
            for r in done
        }
        values = {seed: v for seed, v in values.items() if v is not None and math.isfinite(v)}
        if not values:
            continue
        interval = mean_interval(list(values.values()))
        table[name] = {
            "values": values,
            "interval": interval,
            "min": min(values.values()),
            "max": max(values.values()),
        }
    return table


def seed_sections(points, point_keys, score, best, sweep_dir: Path) -> list[str]:
    """The Markdown sections of the statistics over seeds, and seeds.csv."""
    lines = ["", f"## Over seeds ({METHOD})"]
    seeds = sorted({r.get("seed") for group in points.values() for r in group}, key=_sort_key)
    seed_columns = [f"seed {_cell(s)}" for s in seeds]
    csv_rows = []
    for point, group in points.items():
        stats = seed_statistics(group, score)
        done = sum(r["status"] == "done" for r in group)
        label = label_of(point, point_keys)
        marked = label + (" **best**" if point == best and len(points) > 1 else "")
        lines += ["", f"### {marked}: {done} of {len(group)} seeds finished", ""]
        header = ["metric", *seed_columns, "mean", "std", "min", "max", "95% CI"]
        lines += markdown_table(header, [seed_cells(name, s, seeds) for name, s in stats.items()])
        csv_rows += [seed_record(label, name, s, seeds) for name, s in stats.items()]
    fields = ["point", "metric", *seed_columns, "n", "mean", "std", "min", "max"]
    with open(sweep_dir / "seeds.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*fields, "ci_low", "ci_high"])
        writer.writeheader()
        writer.writerows(csv_rows)
    return lines


def seed_cells(name: str, s: dict, seeds: list) -> list[str]:
    """One metric's row of a point's table: each seed, then the statistics."""
    iv = s["interval"]
    ci = "n/a" if math.isnan(iv.low) else f"[{iv.low:.4g}, {iv.high:.4g}]"
    per_seed = [_cell(s["values"].get(seed, math.nan)) for seed in seeds]
    return [name, *per_seed, *map(_cell, (iv.mean, iv.std, s["min"], s["max"])), ci]


def seed_record(label: str, name: str, s: dict, seeds: list) -> dict:
    """One metric of one point as a row of seeds.csv."""
    iv = s["interval"]
    return {
        "point": label,
        "metric": name,
        **{f"seed {_cell(seed)}": s["values"].get(seed, "") for seed in seeds},
        "n": iv.n,
        "mean": iv.mean,
        "std": iv.std,
        "min": s["min"],
        "max": s["max"],
        "ci_low": iv.low,
        "ci_high": iv.high,
    }


def markdown_table(header: list[str], body: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *["| " + " | ".join(cells) + " |" for cells in body],
    ]


def edge_warnings(
    points: dict[tuple, list[dict]], best: tuple | None, point_keys: list[str]
) -> list[str]:
    """A best value at the end of a numeric range means the optimum may lie outside it."""
    warnings = []
    if best is None:
        return ["no job finished; see each job's train.log"]
    for i, key in enumerate(point_keys):
        values = sorted({p[i] for p in points if isinstance(p[i], float)})
        if len(values) >= 3 and best[i] in (values[0], values[-1]):
            side = "lowest" if best[i] == values[0] else "highest"
            warnings.append(
                f"the best {key} ({best[i]:g}) is the {side} value swept: "
                "the optimum may lie outside the range; extend it"
            )
    return warnings


def evaluate_test(job_dir: Path, device: str = "auto") -> Path | None:
    """eval_test.json for a finished job (its reported checkpoint on the test split:
    last.pt, or best.pt with trainer.test_checkpoint=best), as ``python -m
    {{ cookiecutter.package_name }}.eval`` writes it; skipped when it is already there
    for the same checkpoint (a resumed sweep) or the job did not finish."""
    job_dir = Path(job_dir)
    ckpt = reported_checkpoint(job_dir)
    output = job_dir / "eval_test.json"
    if not (job_dir / "metrics.json").is_file() or not ckpt.is_file():
        return None
    # Written after the checkpoint it evaluated: nothing has changed since.
    if (
        output.is_file()
        and json.loads(output.read_text()).get("ckpt_path") == str(ckpt)
        and output.stat().st_mtime_ns >= ckpt.stat().st_mtime_ns
    ):
        return output
    from ..eval import evaluate_checkpoint  # torch and the data: only when evaluating

    metrics = evaluate_checkpoint(ckpt, split="test", device=device)
    metrics["ckpt_path"] = str(ckpt)
    output.write_text(json.dumps(metrics, indent=2) + "\n")
    log.info("test split: %s", json.dumps(metrics))
    return output


class SweepSummary(Callback):
    """Hydra callback: (``evaluate_test``) evaluate each job on the test split when
    it ends; summarise the sweep once its last job has ended."""

    def __init__(
        self,
        swept: list[str],
        last_k: int = LAST_K,
        diverge_factor: float = DIVERGE_FACTOR,
        columns: list[str] | None = None,
        evaluate_test: bool = False,
    ):
        self.swept = list(swept)
        self.last_k = int(last_k)
        self.diverge_factor = float(diverge_factor)
        self.columns = tuple(columns or ())
        self.evaluate_test = evaluate_test

    def on_job_end(self, config, job_return=None, **kwargs) -> None:
        if not self.evaluate_test:
            return
        job_dir = Path(config.hydra.runtime.output_dir)
        try:
            evaluate_test(job_dir, config.device)
        except Exception:  # one job's failed evaluation must not stop the others
            log.exception("%s: evaluation on the test split failed", job_dir)

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        summarise_sweep(
            sweep_dir,
            self.swept,
            last_k=self.last_k,
            diverge_factor=self.diverge_factor,
            columns=self.columns,
        )
        log.info("sweep summary: %s", sweep_dir / "summary.md")


def is_better_or_equal(value: float, reference: float) -> bool:
    return value >= reference if HEADLINE_MODE == "max" else value <= reference


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def _sort_key(value) -> tuple:
    return (0, value, "") if isinstance(value, float) else (1, 0.0, str(value))


def _cell(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument(
        "--swept", nargs="+", default=[], help="swept keys (default: those that vary)"
    )
    parser.add_argument(
        "--last-k", type=int, default=LAST_K, help="rank by the mean of the last k evaluations"
    )
    parser.add_argument("--diverge-factor", type=float, default=DIVERGE_FACTOR)
    parser.add_argument(
        "--columns", nargs="+", default=[], help="metrics.json / eval_test.json keys to show"
    )
    parser.add_argument(
        "--evaluate-test",
        action="store_true",
        help="first write eval_test.json for finished jobs lacking it",
    )
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    jobs = find_jobs(args.sweep_dir)
    if not jobs:
        sys.exit(f"error: {args.sweep_dir} holds no sweep jobs (<dir>/<job>/.hydra/overrides.yaml)")
    if args.evaluate_test:
        for job in jobs:
            evaluate_test(job, args.device)
    summarise_sweep(
        args.sweep_dir,
        args.swept,
        last_k=args.last_k,
        diverge_factor=args.diverge_factor,
        columns=args.columns,
    )
    print((args.sweep_dir / "summary.md").read_text(), end="")


if __name__ == "__main__":
    main()
