"""Numbers match? Compare a run's metrics with the paper's reference numbers.

    python -m {{ cookiecutter.package_name }}.compare runs/<date>/<time>
    python -m {{ cookiecutter.package_name }}.compare runs/<date>/<time> --references reference_numbers.yaml

Reads ``reference_numbers.yaml`` (metric, paper value, tolerance, where in the
paper) and the run's ``metrics.json`` and ``eval_<split>.json`` (written by
eval.py; its metrics count as ``<split>/<name>``). Prints paper vs ours as a
Markdown table and exits non-zero when a number is missing or outside its
tolerance, so a CI job can gate on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

DEFAULT_REFERENCES = Path("reference_numbers.yaml")


def run_metrics(run_dir: Path) -> dict[str, float]:
    """Every number a run directory holds, by name (``val/acc``, ``test/acc``, ...)."""
    metrics = {}
    if (run_dir / "metrics.json").is_file():
        metrics.update(json.loads((run_dir / "metrics.json").read_text()))
    for path in sorted(run_dir.glob("eval_*.json")):
        evaluation = json.loads(path.read_text())
        split = evaluation.get("split", path.stem.removeprefix("eval_"))
        metrics.update(
            {
                f"{split}/{k}": v
                for k, v in evaluation.items()
                if k not in ("split", "step", "ckpt_path")
            }
        )
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}


def compare(references: list[dict], ours: dict[str, float]) -> tuple[list[str], bool]:
    """Markdown table rows and whether every reference is met."""
    rows = [
        "| Metric | Paper | Ours | Difference | Tolerance | Where in the paper | |",
        "|---|---|---|---|---|---|---|",
    ]
    all_ok = True
    for ref in references:
        value = ours.get(ref["metric"])
        if value is None:
            ok, ours_text, diff_text = False, "missing", ""
        else:
            diff = value - ref["paper"]
            ok = abs(diff) <= ref["tolerance"]
            ours_text, diff_text = f"{value:.4g}", f"{diff:+.4g}"
        all_ok &= ok
        rows.append(
            f"| {ref['metric']} | {ref['paper']:.4g} | {ours_text} | {diff_text} | "
            f"±{ref['tolerance']:.4g} | {ref['where']} | {'ok' if ok else 'OFF'} |"
        )
    return rows, all_ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run directory (runs/<date>/<time>)")
    parser.add_argument("--references", type=Path, default=DEFAULT_REFERENCES)
    args = parser.parse_args(argv)
    if not args.references.is_file():
        print(
            f"error: no reference file {args.references}; pass --references <file>", file=sys.stderr
        )
        return 2
    if not args.run_dir.is_dir():
        print(f"error: {args.run_dir} is not a run directory", file=sys.stderr)
        return 2
    references = yaml.safe_load(args.references.read_text())
    rows, all_ok = compare(references, run_metrics(args.run_dir))
    print("\n".join(rows))
    if not all_ok:
        print(
            "\nOFF: outside tolerance; missing: run eval.py on the checkpoint first "
            f"(python -m {__package__}.eval ckpt_path={args.run_dir}/checkpoints/last.pt)",
            file=sys.stderr,
        )
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
