"""Check every bundled example's claims: for each paper type, bake the default
project, run its reference experiment over seeds 0-2 (`-m sweep=seeds
experiment=reference`), run `compare` on that sweep and print one table of every
claim. Exits 1 when any row is OFF, FAILS or inconclusive (a claim that needs an
ablation sweep says "not checked": `--ablations` runs `sweep=ablation` instead,
four times the work, and checks those too).

    python tests/bundled_claims.py                    # every type, two at a time
    python tests/bundled_claims.py --types rl-value --keep runs/claims

The marked template test `pytest -m claims` runs it (not in the default run: ~20
minutes on 2 cores); the template's CI workflow runs it weekly and on demand.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent.parent
PAPER_TYPES = json.loads((TEMPLATE / "cookiecutter.json").read_text())["paper_type"]
PKG = "attention_is_all_you_need"  # the default title's package
# Longest first, so that two at a time finish together.
ORDER = ["lm", "gan", "diffusion", "rl-value", "rl", "transformer", "generative", "vision"]
BAD = ("OFF", "FAILS", "inconclusive", "missing")


@dataclass
class Row:
    paper_type: str
    claim: str
    ours: str
    interval: str
    verdict: str
    seconds: float


def run(command: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, timeout=5400)


def check_type(paper_type: str, out: Path, ablations: bool = False) -> list[Row]:
    """Bake ``paper_type`` under ``out``, run its reference over seeds 0-2, compare."""
    out.mkdir(parents=True, exist_ok=True)
    bake = [sys.executable, "-m", "cookiecutter", "--no-input", str(TEMPLATE), "-o", str(out),
            f"paper_type={paper_type}"]  # fmt: skip
    baked = run(bake, cwd=out)
    if baked.returncode != 0:
        return [Row(paper_type, "bake", "", "", f"FAILS: {baked.stderr.strip()[-200:]}", 0.0)]
    project = out / "attention-is-all-you-need"
    env = {**os.environ, "PYTHONPATH": str(project / "src"), "OMP_NUM_THREADS": "1"}
    sweep = project / "runs" / "claims"
    kind = ["sweep=ablation", "seed=range(3)"] if ablations else ["sweep=seeds"]
    train = [sys.executable, "-m", f"{PKG}.train", "-m", *kind, "experiment=reference",
             "trainer.num_threads=1", "trainer.tensorboard=false", f"hydra.sweep.dir={sweep}"]  # fmt: skip
    start = time.perf_counter()
    trained = run(train, cwd=project, env=env)
    seconds = time.perf_counter() - start
    if trained.returncode != 0:
        tail = (trained.stderr or trained.stdout).strip()[-300:]
        return [Row(paper_type, "train", "", "", f"FAILS: {tail}", seconds)]
    rows_file = out / "compare.json"
    compare = [sys.executable, "-m", f"{PKG}.judge.compare", str(sweep), "--json", str(rows_file)]
    compared = run(compare, cwd=project, env=env)
    if not rows_file.is_file():
        return [Row(paper_type, "compare", "", "", f"FAILS: {compared.stderr.strip()[-300:]}", seconds)]
    return [
        Row(paper_type, r["claim"], r["ours"], r["interval"], r["verdict"], seconds)
        for r in json.loads(rows_file.read_text())
    ]


def table(rows: list[Row]) -> str:
    lines = [
        "| type | claim | ours (mean ± std) | 95% interval | verdict | wall time (s) |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.paper_type} | {r.claim} | {r.ours} | {r.interval} | {r.verdict} | {r.seconds:.0f} |"
        for r in rows
    ]
    return "\n".join(lines)


def exit_status(rows: list[Row]) -> int:
    """1 when any row is OFF, FAILS, inconclusive or missing; 0 otherwise."""
    return int(any(r.verdict.startswith(BAD) for r in rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--types", nargs="+", default=PAPER_TYPES, choices=PAPER_TYPES)
    parser.add_argument("--jobs", type=int, default=2, help="paper types at once (one core each)")
    parser.add_argument("--ablations", action="store_true", help="sweep=ablation x 3 seeds")
    parser.add_argument("--keep", type=Path, help="bake and run here (default: a temporary dir)")
    args = parser.parse_args(argv)
    types = sorted(args.types, key=lambda t: ORDER.index(t) if t in ORDER else -1)
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch)
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = pool.map(lambda t: check_type(t, root / t, args.ablations), types)
            rows = [row for rows in results for row in rows]
    rows.sort(key=lambda r: PAPER_TYPES.index(r.paper_type))
    print(table(rows))
    return exit_status(rows)


if __name__ == "__main__":
    sys.exit(main())
