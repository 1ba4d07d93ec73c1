"""The report: REPORT.md holds scope, methodology, results and the journal's notes;
the README's results section is filled between its markers and nowhere else; the
exported weights load with the snippet the report prints and match their sha256."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
import yaml

from {{ cookiecutter.package_name }}.engine.ckpt import (
    load_checkpoint,
)
from {{ cookiecutter.package_name }}.engine.run_log import (
    reported_checkpoint,
)
from {{ cookiecutter.package_name }}.judge.report import (
    END,
    START,
    export_weights,
    loading_snippet,
    write_report,
)

PROJECT = Path(__file__).resolve().parent.parent
REFERENCES = PROJECT / "reference_numbers.yaml"
JOURNAL = """# Implementation journal

<!-- Template: copy from here ...

## 2025-01-01: phase N

**What was easy.** The template's example, not an entry.

... to here -->

## 2025-03-02: phase 5 (evaluation)

**What was difficult.** The paper averages over tokens,
not sequences; found it in the appendix.
"""


def fake_seed_sweep(sweep_dir: Path, references: list[dict]) -> Path:
    """Three finished seeds at the paper's numbers (and a little past each bound), as
    sweep=seeds leaves them."""
    targets = []
    for ref in references:
        if "paper" in ref:
            targets.append((ref["metric"], ref["paper"], ref["tolerance"] / 100))
        elif "at_least" in ref or "at_most" in ref:
            sign = 1 if "at_least" in ref else -1
            bound = ref.get("at_least", ref.get("at_most"))
            margin = abs(bound) / 10 + 1e-3
            targets.append((ref["metric"], bound + sign * margin, margin / 100))
    task = ["sweep=seeds", "experiment=reference"]
    sweep_dir.mkdir(parents=True)
    multirun = {"hydra": {"overrides": {"task": task}}}
    (sweep_dir / "multirun.yaml").write_text(yaml.safe_dump(multirun))
    for seed in range(3):
        job = sweep_dir / str(seed)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([*task, f"seed={seed}"]))
        (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": seed}))
        final = {"step": 100, "train_seconds": 12.5 + seed, "eval_seconds": 1.0, "device": "cpu"}
        by_split: dict[str, dict] = {}
        for metric, centre, jitter in targets:
            split, name = metric.split("/", 1)
            value = centre + (seed - 1) * jitter
            if split == "test":
                by_split.setdefault(split, {"split": "test", "step": 100})[name] = value
            else:
                final[metric] = value
        (job / "metrics.json").write_text(json.dumps(final))
        for split, content in by_split.items():
            (job / f"eval_{split}.json").write_text(json.dumps(content))
    return sweep_dir


def test_report_has_every_section_and_fills_only_the_readme_s_results(tmp_path):
    references = yaml.safe_load(REFERENCES.read_text())
    sweep = fake_seed_sweep(tmp_path / "sweep", references)
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nBefore.\n\n{START}\nold results\n{END}\n\nAfter.\n")
    (tmp_path / "JOURNAL.md").write_text(JOURNAL)
    output, filled = write_report(
        sweep,
        REFERENCES,
        output=tmp_path / "REPORT.md",
        paper=PROJECT / "PAPER.md",
        journal=tmp_path / "JOURNAL.md",
        readme=readme,
    )
    report = output.read_text()
    sections = ("Scope", "Methodology", "Results", "What was easy", "What was difficult")
    for section in sections:
        assert f"## {section}" in report, section
    package = "{{ cookiecutter.package_name }}"
    command = f"python -m {package}.train -m sweep=seeds experiment=reference"
    assert command in report
    assert "| 2 | 2 | none | 100 | 14.5 |" in report  # wall time per run
    assert "(n=3)" in report and "Student-t" in report
    assert "| matches |" in report or "| holds |" in report
    assert "The paper averages over tokens, not sequences" in report  # from JOURNAL.md
    assert "_Not in JOURNAL.md yet" in report  # nothing easy written: a prompt, not the template
    # The README: its results replaced between the markers, the rest untouched.
    assert filled
    text = readme.read_text()
    assert text.startswith("# Title\n\nBefore.\n\n") and text.endswith(f"{END}\n\nAfter.\n")
    results = text.split(START)[1].split(END)[0]
    assert "old results" not in results and command in results and "(n=3)" in results


def test_exported_weights_load_with_the_printed_snippet_and_match_their_sha256(
    quick_run, tmp_path, monkeypatch
):
    release = export_weights(quick_run, tmp_path / "release")
    digest = hashlib.sha256(release["weights"].read_bytes()).hexdigest()
    assert release["sha256"] == digest
    assert (tmp_path / "release" / "weights.pt.sha256").read_text().startswith(digest)
    # The weights only (of the checkpoint the run reports: trainer.test_checkpoint),
    # no optimiser state, no random states.
    reported = reported_checkpoint(quick_run)
    assert set(torch.load(release["weights"], weights_only=True)) == set(
        load_checkpoint(reported)["model"]
    )
    # Run the snippet as a reader would, from the directory the report is in.
    snippet = loading_snippet(release, tmp_path)
    code = "\n".join(line for line in snippet if not line.startswith("```"))
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(code, scope)
    expected = load_checkpoint(reported)["model"]
    loaded = scope["model"].state_dict()
    assert all(torch.equal(loaded[name], tensor) for name, tensor in expected.items())
