"""Reading what runs left behind: the numbers in a run directory, the jobs of a
Hydra sweep and the overrides each job ran with. The sweep summary, compare and
report all read runs through these.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml


def run_metrics(run_dir: Path) -> dict[str, float]:
    """Every number a run directory holds, by name: metrics.json (``val/acc``, ...)
    and eval_<split>.json, written by eval.py or a sweep's test evaluation
    (``test/acc``, ...)."""
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
    # bool is an int: ranks_agree would otherwise count as a number.
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def find_jobs(sweep_dir: Path) -> list[Path]:
    """The job directories of a sweep, in job order (0, 1, ..., 10)."""
    return sorted(
        (p.parent.parent for p in Path(sweep_dir).glob("*/.hydra/overrides.yaml")),
        key=lambda p: (len(p.name), p.name),
    )


def job_overrides(job_dir: Path) -> dict[str, str]:
    overrides = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text()) or []
    return dict(item.split("=", 1) for item in overrides if "=" in item)


def varying_keys(jobs: list[Path]) -> list[str]:
    """Override keys whose value differs between jobs (``seed`` in ``-m sweep=ablation
    seed=0,1,2``), in the order the first job lists them."""
    values: dict[str, set] = {}
    for job in jobs:
        for key, value in job_overrides(job).items():
            values.setdefault(key, set()).add(value)
    missing = {key for key in values if any(key not in job_overrides(j) for j in jobs)}
    return [key for key, seen in values.items() if len(seen) > 1 or key in missing]
