"""The reproduction report: REPORT.md, the README's results, released weights.

    python -m {{ cookiecutter.package_name }}.judge.report runs/sweeps/seeds/<time>
    python -m {{ cookiecutter.package_name }}.judge.report runs/sweeps/ablation/<time> --export-weights
    python -m {{ cookiecutter.package_name }}.judge.report runs/<date>/<time> --no-readme

Reads a run, seed-sweep or ablation-sweep directory (as ``compare`` does) and
writes, in the order a reproduction report is read (the ML Reproducibility
Challenge's: scope, methodology, results, what was easy, what was difficult):
    REPORT.md           the claims in scope (PAPER.md and reference_numbers.yaml);
                        the method (commands, config, seeds, hardware, wall time per
                        run); paper vs ours with mean +- std, 95% interval and
                        verdicts, the claims table, the curves; what was easy and
                        what was difficult, from JOURNAL.md
    report-curves.png   the curves figure REPORT.md shows (copied from the run)
    README.md           the part between <!-- results:start --> and <!-- results:end -->:
                        the results table and the exact commands behind each number
With ``--export-weights``: ``release/weights.pt`` (the model's weights only: no
optimiser, no random states), ``release/config.yaml`` (the resolved config that
produced them) and their sha256 and a loading snippet in REPORT.md and the README.
In a sweep the exported run is the full model's median seed on the headline
metric: a representative run, not the luckiest one.

Prose is never overwritten: edit JOURNAL.md (or REPORT.md's copy, which the next
run replaces) and the README outside the markers.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import re
import shlex
import shutil
import sys
from datetime import date
from importlib import metadata
from pathlib import Path

import yaml

from ..engine.run_log import reported_checkpoint
from ..loss import HEADLINE_METRIC, HEADLINE_MODE
from .compare import (
    DEFAULT_REFERENCES,
    FULL_MODEL,
    check,
    check_sweep_kind,
    ci_text,
    claim_table,
    load_runs,
    methods,
    number_table,
    ours_text,
    verdict_text,
)
from .runs import find_jobs, job_overrides, run_metrics

PACKAGE = __package__.rpartition(".")[0]  # the project's package (this is its judge/)
START, END = "<!-- results:start -->", "<!-- results:end -->"
PROMPT = "_Not in JOURNAL.md yet: add a **{}** paragraph to the day's entries, or write it here._"


def run_dirs(path: Path) -> list[Path]:
    """The run directories behind ``path``: its jobs, or itself."""
    return find_jobs(path) or [path]


def train_command(path: Path) -> str:
    """The command that produced ``path``: a sweep's command line from multirun.yaml,
    a run's from its .hydra/overrides.yaml."""
    multirun = path / "multirun.yaml"
    if multirun.is_file():
        task = yaml.safe_load(multirun.read_text())["hydra"]["overrides"]["task"]
        return _command("train", "-m", *task)
    overrides = path / ".hydra" / "overrides.yaml"
    task = yaml.safe_load(overrides.read_text()) if overrides.is_file() else []
    return _command("train", *(task or []))


def commands(path: Path, release: bool = False) -> list[str]:
    """Every command behind the numbers (and the released weights), in order."""
    lines = [train_command(path)]
    if not find_jobs(path):  # a plain run: its test numbers come from eval.py
        lines.append(_command("eval", f"ckpt_path={reported_checkpoint(path)}"))
    report = [str(path), "--export-weights"] if release else [str(path)]
    lines += [_command("judge.compare", str(path)), _command("judge.report", *report)]
    return lines


def methodology(path: Path, release: bool = False) -> list[str]:
    """Commands, config, seeds, hardware and wall time per run."""
    runs = run_dirs(path)
    lines = ["## Methodology", "", "Commands, in order:", "", "```bash"]
    lines += [*commands(path, release), "```", ""]
    table = ["| Run | Seed | Ablation | Steps | Train time (s) | Eval time (s) | Device | Status |"]
    table.append("|---|---|---|---|---|---|---|---|")
    seeds, devices = [], set()
    for run in runs:
        values = job_overrides(run) if (run / ".hydra" / "overrides.yaml").is_file() else {}
        metrics = _json(run / "metrics.json")
        config = _config(run)
        seed = values.get("seed", str(config.get("seed", "?")))
        seeds.append(seed)
        devices.add(str(metrics.get("device", "?")))
        status = (
            "diverged"
            if (run / "diverged.json").is_file()
            else ("done" if metrics else "unfinished")
        )
        table.append(
            f"| {run.name} | {seed} | {values.get('ablation', FULL_MODEL)} | "
            f"{metrics.get('step', '')} | {metrics.get('train_seconds', '')} | "
            f"{metrics.get('eval_seconds', '')} | {metrics.get('device', '')} | {status} |"
        )
    config = _config(runs[0])
    lines += [
        f"- Runs: {len(runs)}; seeds: {', '.join(dict.fromkeys(seeds))}.",
        f"- Hardware: {', '.join(sorted(devices))} ({_machine()}).",
        f"- Software: Python {platform.python_version()}, {_versions()}.",
        f"- The config of run {runs[0].name} (every run's is in its `.hydra/config.yaml`):",
        "",
        "<details><summary>config</summary>",
        "",
        "```yaml",
        yaml.safe_dump(config, sort_keys=False).rstrip() if config else "# not found",
        "```",
        "",
        "</details>",
        "",
        "Wall time per run (`train_seconds`: the training loop with its validations):",
        "",
        *table,
    ]
    return lines


def scope(paper: Path, references: list[dict], results) -> list[str]:
    """The claims in scope: the paper's reference numbers (PAPER.md) and the entries
    of the references file, in words."""
    lines = ["## Scope: the claims checked", ""]
    table = _section_table(paper, "Reference numbers")
    if table:
        lines += ['From PAPER.md ("Reference numbers"):', "", *table, ""]
    lines += [f"From `{DEFAULT_REFERENCES}` ({len(references)} entries):", ""]
    for ref, result in zip(references, results, strict=True):
        if result.kind == "number":
            text = f"{result.claim} = {result.paper:g} ± {result.tolerance:g}"
        else:
            text = f"{result.kind}: {result.claim}"
        lines.append(f"- {text} ({ref.get('where', 'where?')})")
    return lines


def journal_notes(journal: Path, label: str) -> list[str]:
    """The ``**<label>.**`` paragraphs of JOURNAL.md's dated entries, each under its date."""
    if not journal.is_file():
        return []
    text = re.sub(r"<!--.*?-->", "", journal.read_text(), flags=re.S)  # the template
    notes, heading = [], ""
    for block in re.split(r"\n\s*\n", text):
        block = block.strip()
        if block.startswith("## "):
            heading = block.splitlines()[0][3:]
        elif block.startswith(f"**{label}.**") and "YYYY" not in heading:
            body = " ".join(block[len(label) + 5 :].split())
            if body and not body.startswith("_"):
                notes.append(f"- {heading}: {body}")
    return notes


def results_lines(results, runs, figure: str | None) -> list[str]:
    lines = ["## Results", ""]
    numbers, claims = number_table(results), claim_table(results)
    if len(numbers) > 2:
        lines += ["Paper vs ours:", "", *numbers, ""]
    if len(claims) > 2:
        lines += ["Claims:", "", *claims, ""]
    lines += [*methods(results), *[f"- note: {n}" for n in runs.notes]]
    lines += ["", f"Overall: {_overall(results)}.", ""]
    if figure:
        lines += [f"![training curves]({figure})", ""]
    return lines


def export_weights(path: Path, out_dir: Path, checkpoint: Path | None = None) -> dict:
    """release/weights.pt (model weights only), release/config.yaml; returns what
    the report says about them."""
    import torch  # only here: the rest of the report needs no torch

    from ..engine.ckpt import load_checkpoint

    ckpt = checkpoint or chosen_checkpoint(path)
    state = load_checkpoint(ckpt)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights, config = out_dir / "weights.pt", out_dir / "config.yaml"
    torch.save(state["model"], weights)
    config.write_text(yaml.safe_dump(state["config"], sort_keys=False))
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    (out_dir / "weights.pt.sha256").write_text(f"{digest}  weights.pt\n")
    return {"checkpoint": ckpt, "weights": weights, "config": config, "sha256": digest}


def chosen_checkpoint(path: Path) -> Path:
    """A run's reported checkpoint (last.pt, or best.pt by trainer.test_checkpoint);
    in a sweep, that of the full model's median seed on the test (else validation)
    headline metric."""
    jobs = find_jobs(path)
    if not jobs:
        return reported_checkpoint(path)
    candidates = []
    for job in jobs:
        if job_overrides(job).get("ablation", FULL_MODEL) != FULL_MODEL:
            continue
        metrics = run_metrics(job)
        value = metrics.get(f"test/{HEADLINE_METRIC}", metrics.get(f"val/{HEADLINE_METRIC}"))
        if value is not None and math.isfinite(value) and reported_checkpoint(job).is_file():
            candidates.append((value, job.name, job))
    if not candidates:
        raise SystemExit(f"error: no finished run of the full model under {path} to export")
    candidates.sort(reverse=HEADLINE_MODE == "max")
    return reported_checkpoint(candidates[(len(candidates) - 1) // 2][2])


def loading_snippet(release: dict, base: Path) -> list[str]:
    weights = _relative(release["weights"], base)
    config = _relative(release["config"], base)
    return [
        "```python",
        "import torch",
        "from omegaconf import OmegaConf",
        f"from {PACKAGE}.data import spec",
        f"from {PACKAGE}.model import build_model",
        "",
        f'cfg = OmegaConf.load("{config}")',
        "model = build_model(cfg.model, spec(cfg.data))",
        f'model.load_state_dict(torch.load("{weights}", weights_only=True))',
        "```",
    ]


def weights_lines(release: dict, base: Path) -> list[str]:
    return [
        f"Weights: `{_relative(release['weights'], base)}` (sha256 `{release['sha256']}`), "
        f"from `{release['checkpoint']}`; the config that produced them: "
        f"`{_relative(release['config'], base)}`. Load them with:",
        "",
        *loading_snippet(release, base),
    ]


def fill_readme(readme: Path, block: list[str]) -> bool:
    """Replace what lies between the markers; False when the markers are not there."""
    text = readme.read_text()
    if START not in text or END not in text:
        return False
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    readme.write_text(head + START + "\n" + "\n".join(block).strip() + "\n" + END + tail)
    return True


def readme_block(path: Path, results, release: dict | None, base: Path, report: Path) -> list[str]:
    numbers = ["| Metric | Paper | Ours | 95% CI | Verdict |", "|---|---|---|---|---|"]
    for r in results:
        if r.kind == "number":
            ours = ours_text(r.estimate) if r.estimate else "missing"
            ci = ci_text(r.estimate) if r.estimate else ""
            numbers.append(f"| {r.claim} | {r.paper:.4g} | {ours} | {ci} | {verdict_text(r)} |")
    claims = claim_table(results)
    block = [
        f"Measured on {date.today().isoformat()}; the full report: [{report.name}]({_relative(report, base)}).",
        "",
    ]
    if len(numbers) > 2:
        block += [*numbers, ""]
    if len(claims) > 2:
        block += [*claims, ""]
    block += ["These commands produce every number above:", "", "```bash"]
    block += [*commands(path, release is not None), "```"]
    if release:
        block += ["", *weights_lines(release, base)]
    return block


def write_report(
    path: Path,
    references_path: Path = DEFAULT_REFERENCES,
    output: Path = Path("REPORT.md"),
    paper: Path = Path("PAPER.md"),
    journal: Path = Path("JOURNAL.md"),
    readme: Path | None = Path("README.md"),
    release_dir: Path | None = None,
) -> tuple[Path, bool]:
    """REPORT.md (and the README's results section, and the release); returns the
    report's path and whether the README was filled in."""
    references = yaml.safe_load(references_path.read_text()) or []
    runs = load_runs(path)
    results = check(references, runs)
    base = output.resolve().parent
    release = export_weights(path, release_dir) if release_dir else None
    figure = _figure(path, base)

    title = _title(paper)
    lines = [
        f"# Reproduction report: {title}",
        "",
        f"Written by `{_command('judge.report', str(path))}` on {date.today().isoformat()} from "
        f"`{path}`. The numbers are regenerated on every run; keep your prose in "
        "JOURNAL.md and PAPER.md.",
        "",
        *scope(paper, references, results),
        "",
        *methodology(path, release is not None),
        "",
        *results_lines(results, runs, figure),
    ]
    for label in ("What was easy", "What was difficult"):
        notes = journal_notes(journal, label)
        lines += [f"## {label}", "", *(notes or [PROMPT.format(label + ".")]), ""]
    if release:
        lines += ["## Released weights", "", *weights_lines(release, base), ""]
    output.write_text("\n".join(lines).rstrip() + "\n")
    filled = False
    if readme is not None and readme.is_file():
        filled = fill_readme(readme, readme_block(path, results, release, base, output))
    return output, filled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run, seed-sweep or ablation-sweep directory")
    parser.add_argument("--references", type=Path, default=DEFAULT_REFERENCES)
    parser.add_argument("--output", type=Path, default=Path("REPORT.md"))
    parser.add_argument("--paper", type=Path, default=Path("PAPER.md"))
    parser.add_argument("--journal", type=Path, default=Path("JOURNAL.md"))
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    parser.add_argument("--no-readme", action="store_true", help="leave README.md alone")
    parser.add_argument(
        "--export-weights",
        nargs="?",
        const=Path("release"),
        type=Path,
        metavar="DIR",
        help="write DIR/weights.pt (default DIR: release), config.yaml and the sha256",
    )
    args = parser.parse_args(argv)
    for name, given in (("run directory", args.run_dir), ("references", args.references)):
        if not given.exists():
            print(f"error: {name} {given} does not exist", file=sys.stderr)
            return 2
    problem = check_sweep_kind(args.run_dir)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    output, filled = write_report(
        args.run_dir,
        args.references,
        args.output,
        args.paper,
        args.journal,
        None if args.no_readme else args.readme,
        args.export_weights,
    )
    print(f"wrote {output}")
    if not args.no_readme:
        if filled:
            print(f"filled the results section of {args.readme}")
        else:
            print(
                f"note: {args.readme} has no {START} ... {END} markers: its results were not filled",
                file=sys.stderr,
            )
    return 0


def _command(module: str, *args: str) -> str:
    return " ".join(["python", "-m", f"{PACKAGE}.{module}", *(shlex.quote(a) for a in args)])


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _config(run: Path) -> dict:
    path = run / ".hydra" / "config.yaml"
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} CPU cores"


def _versions() -> str:
    found = []
    for name in ("torch", "hydra-core", "numpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):  # not installed: not listed
            found.append(f"{name} {metadata.version(name)}")
    return ", ".join(found)


def _section_table(path: Path, heading: str) -> list[str]:
    """The filled-in rows of the first table under ``## <heading>`` in a Markdown file."""
    if not path.is_file():
        return []
    text = path.read_text()
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    if not match:
        return []
    rows = [line for line in match.group(1).splitlines() if line.startswith("|")]
    filled = [row for row in rows[2:] if row.strip("| ")]
    return [*rows[:2], *filled] if filled else []


def _title(paper: Path) -> str:
    if paper.is_file():
        first = paper.read_text().splitlines()[0]
        return first.split(":", 1)[1].strip() if ":" in first else first.lstrip("# ")
    return "(no PAPER.md)"


def _figure(path: Path, base: Path) -> str | None:
    """Copy the run's curves (a sweep's summary.png, a run's training_curves.png)
    next to the report, so that it travels with it."""
    for name in ("summary.png", "training_curves.png"):
        source = path / name
        if source.is_file():
            target = base / "report-curves.png"
            shutil.copyfile(source, target)
            return target.name
    return None


def _relative(target: Path, base: Path) -> str:
    return os.path.relpath(Path(target).resolve(), base)


def _overall(results) -> str:
    bad = [r for r in results if r.verdict in ("OFF", "FAILS", "missing")]
    unsure = [r for r in results if r.verdict == "inconclusive"]
    if bad:
        return f"{len(bad)} of {len(results)} rows off, failing or missing"
    if unsure:
        return f"every row matches or holds but {len(unsure)} inconclusive (more seeds)"
    return f"all {len(results)} rows match or hold"


if __name__ == "__main__":
    sys.exit(main())
