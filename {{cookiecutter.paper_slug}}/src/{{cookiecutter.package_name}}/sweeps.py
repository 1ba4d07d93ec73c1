"""Sweep summaries: one table, one CSV and one plot per Hydra multirun.

    python -m {{ cookiecutter.package_name }}.train -m sweep=lr         # LR range, 1e-5 .. 1e-1
    python -m {{ cookiecutter.package_name }}.train -m sweep=ablation   # one component off per job
    python -m {{ cookiecutter.package_name }}.sweeps <sweep dir>        # (re)write a summary by hand

Hydra's basic sweeper discards what each job returns, so every job leaves its
numbers in its own directory (metrics.json, metrics.jsonl, diverged.json) and
``SweepSummary`` (a Hydra callback, configured in configs/sweep/*.yaml) reads them
all when the sweep ends and writes into the sweep directory:
    summary.md    the table, best job marked, warnings (e.g. best LR at the edge)
    summary.csv   the same numbers for a spreadsheet or pandas
    summary.png   final train loss and validation metric against the swept value
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
from pathlib import Path

import yaml
from hydra.experimental.callback import Callback

from .loss import HEADLINE_METRIC, HEADLINE_MODE

log = logging.getLogger(__name__)


def job_row(job_dir: Path, swept: list[str]) -> dict:
    """One job's swept values and results. A job that never finished counts as
    unfinished; one stopped by the NaN guard, or whose train loss ended more than
    10% above where it started while its headline metric ended worse than at
    initialisation, counts as diverged."""
    overrides = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text()) or []
    values = dict(item.split("=", 1) for item in overrides if "=" in item)
    row = {key: _number(values.get(key, "")) for key in swept}
    headline = f"val/{HEADLINE_METRIC}"
    records = [json.loads(line) for line in _lines(job_dir / "metrics.jsonl")]
    losses = [r["train/loss"] for r in records if "train/loss" in r]
    final = json.loads((job_dir / "metrics.json").read_text()) if _done(job_dir) else {}
    stopped = (job_dir / "diverged.json").is_file()
    row["train_loss"] = final.get("train/loss", math.nan)
    row[headline] = final.get(headline, math.nan)
    # Rose by more than noise from where it started (NaN counts as risen) while the
    # headline metric ended worse than at initialisation. Both: an RL loss rises
    # as the policy improves (longer episodes, larger returns to fit).
    rose = len(losses) > 1 and not losses[-1] <= losses[0] + 0.1 * abs(losses[0])
    at_init = next((r[headline] for r in records if r["step"] == 0 and headline in r), None)
    got_worse = at_init is not None and not is_better_or_equal(row[headline], at_init)
    row["diverged"] = stopped or (bool(final) and rose and got_worse)
    row["status"] = "diverged" if row["diverged"] else ("done" if final else "unfinished")
    row["job"] = job_dir.name
    return row


def summarise_sweep(sweep_dir: Path, swept: list[str], plot: bool = True) -> list[dict]:
    """Write summary.md, summary.csv and (``plot``) summary.png for the jobs under
    ``sweep_dir``."""
    jobs = sorted(
        (p.parent.parent for p in sweep_dir.glob("*/.hydra/overrides.yaml")),
        key=lambda p: (len(p.name), p.name),  # 0, 1, ..., 10: job order
    )
    rows = [job_row(job, swept) for job in jobs]
    headline = f"val/{HEADLINE_METRIC}"
    finished = [r for r in rows if r["status"] == "done"]
    # Best by the headline metric; among equals, by the lower final train loss.
    sign = 1 if HEADLINE_MODE == "max" else -1
    best = max(finished, key=lambda r: (sign * r[headline], -r["train_loss"]), default=None)
    warnings = edge_warnings(rows, best, swept)
    for warning in warnings:
        log.warning("%s", warning)

    columns = [*swept, "train_loss", headline, "status", "job"]
    # Ablations: how far each row is from the full model ("none").
    baseline = next((r for r in rows if "none" in (r[k] for k in swept)), None)
    if baseline is not None:
        for row in rows:
            row["change vs none"] = row[headline] - baseline[headline]
        columns.insert(len(swept) + 2, "change vs none")
    with open(sweep_dir / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        f"# Sweep over {', '.join(swept)}: {len(rows)} jobs",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in rows:
        cells = [_cell(row[c]) for c in columns]
        if row is best:
            cells[-1] += " **best**"
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *[f"> warning: {w}" for w in warnings]]
    (sweep_dir / "summary.md").write_text("\n".join(lines).rstrip() + "\n")

    numeric = [key for key in swept if all(isinstance(r[key], float) for r in rows)]
    if plot and numeric and rows:
        from .plots import plot_sweep  # matplotlib, only now

        plot_sweep(rows, numeric[0], HEADLINE_METRIC, sweep_dir / "summary.png")
    return rows


def edge_warnings(rows: list[dict], best: dict | None, swept: list[str]) -> list[str]:
    """A best value at the end of a numeric range means the optimum may lie outside it."""
    warnings = []
    if best is None:
        return ["no job finished; see each job's train.log"]
    for key in swept:
        values = sorted({r[key] for r in rows if isinstance(r[key], float)})
        if len(values) >= 3 and best[key] in (values[0], values[-1]):
            side = "lowest" if best[key] == values[0] else "highest"
            warnings.append(
                f"the best {key} ({best[key]:g}) is the {side} value swept: "
                "the optimum may lie outside the range; extend it"
            )
    return warnings


class SweepSummary(Callback):
    """Hydra callback: summarise the sweep once its last job has ended."""

    def __init__(self, swept: list[str]):
        self.swept = list(swept)

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        summarise_sweep(sweep_dir, self.swept)
        log.info("sweep summary: %s", sweep_dir / "summary.md")


def is_better_or_equal(value: float, reference: float) -> bool:
    return value >= reference if HEADLINE_MODE == "max" else value <= reference


def _done(job_dir: Path) -> bool:
    return (job_dir / "metrics.json").is_file()


def _lines(path: Path) -> list[str]:
    return (
        [line for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    )


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def _cell(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--swept", nargs="+", default=["optim.lr"], help="the swept keys")
    args = parser.parse_args(argv)
    if not any(args.sweep_dir.glob("*/.hydra/overrides.yaml")):
        sys.exit(f"error: {args.sweep_dir} holds no sweep jobs (<dir>/<job>/.hydra/overrides.yaml)")
    summarise_sweep(args.sweep_dir, args.swept)
    print((args.sweep_dir / "summary.md").read_text(), end="")


if __name__ == "__main__":
    main()
