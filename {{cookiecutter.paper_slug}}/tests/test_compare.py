"""Numbers match: compare.py passes a run at the paper's values, and fails on a
doctored or missing metric (so a CI job can gate on it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.compare import (
    main,
)

REFERENCES = Path(__file__).resolve().parent.parent / "reference_numbers.yaml"


def write_run(run_dir: Path, values: dict[str, float]) -> Path:
    """A run directory holding ``<split>/<name>`` values as eval.py writes them."""
    run_dir.mkdir(parents=True, exist_ok=True)
    by_split: dict[str, dict] = {}
    for metric, value in values.items():
        split, name = metric.split("/", 1)
        by_split.setdefault(split, {"split": split, "step": 1})[name] = value
    for split, content in by_split.items():
        (run_dir / f"eval_{split}.json").write_text(json.dumps(content))
    return run_dir


@pytest.fixture
def references() -> list[dict]:
    entries = yaml.safe_load(REFERENCES.read_text())
    for entry in entries:
        assert {"metric", "paper", "tolerance", "where"} <= set(entry), entry
        assert entry["tolerance"] > 0
    return entries


def test_a_run_at_the_paper_values_passes(references, tmp_path, capsys):
    run = write_run(tmp_path / "run", {r["metric"]: r["paper"] for r in references})
    assert main([str(run), "--references", str(REFERENCES)]) == 0
    table = capsys.readouterr().out
    assert table.startswith("| Metric | Paper | Ours |") and "OFF" not in table


def test_a_doctored_metric_fails(references, tmp_path, capsys):
    doctored = {r["metric"]: r["paper"] + 2 * r["tolerance"] for r in references}
    assert main([str(write_run(tmp_path / "run", doctored)), "--references", str(REFERENCES)]) == 1
    assert "OFF" in capsys.readouterr().out


def test_a_missing_metric_fails_and_says_how_to_get_it(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    assert main([str(run), "--references", str(REFERENCES)]) == 1
    out, err = capsys.readouterr()
    assert "missing" in out and "eval" in err
