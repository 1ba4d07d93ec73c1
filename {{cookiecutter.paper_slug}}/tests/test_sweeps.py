"""Sweeps: the LR range test and ablations as Hydra multiruns, their summary, resume."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import yaml
from omegaconf import OmegaConf

from {{ cookiecutter.package_name }}.loss import (
    HEADLINE_METRIC,
    HEADLINE_MODE,
)
from {{ cookiecutter.package_name }}.schema import (
    CONFIG_DIR,
    compose_config,
)
from {{ cookiecutter.package_name }}.sweeps import (
    summarise_sweep,
)

HEADLINE = f"val/{HEADLINE_METRIC}"
GOOD, BAD = (0.9, 0.1) if HEADLINE_MODE == "max" else (0.1, 0.9)
TINY = [
    "experiment=tiny",
    "trainer.max_steps=6",
    "trainer.eval_every=3",
    "trainer.log_every=3",
    "trainer.tensorboard=false",
    "trainer.plot=false",
]


def fake_job(sweep_dir, num: int, override: str, losses: list[float], headline: float | None):
    """A job directory as Hydra and train.py leave it."""
    job = sweep_dir / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([override]))
    # Step 0: the validation metric at initialisation (BAD), then the train losses.
    records = [{"step": 0, HEADLINE: BAD}]
    records += [{"step": i + 1, "train/loss": loss} for i, loss in enumerate(losses)]
    (job / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if headline is not None:
        final = {"step": len(losses), "train/loss": losses[-1], HEADLINE: headline}
        (job / "metrics.json").write_text(json.dumps(final))


def test_summary_ranks_jobs_flags_divergence_and_warns_at_the_edge(tmp_path):
    fake_job(tmp_path, 0, "optim.lr=1e-05", [2.0, 1.9], BAD)
    fake_job(tmp_path, 1, "optim.lr=0.001", [2.0, 1.0], GOOD)  # best, and in the middle
    fake_job(tmp_path, 2, "optim.lr=0.1", [2.0, 5.0], BAD - (GOOD - BAD))  # rose, worse: diverged
    fake_job(tmp_path, 3, "optim.lr=1.0", [2.0], None)  # crashed before the end
    fake_job(tmp_path, 4, "optim.lr=0.03", [2.0, 5.0], GOOD)  # loss rose, metric improved (RL)
    # Without the plot (matplotlib, ~1 s): the slow LR sweep test checks summary.png.
    rows = summarise_sweep(tmp_path, ["optim.lr"], plot=False)
    assert [r["optim.lr"] for r in rows] == [1e-5, 1e-3, 0.1, 1.0, 0.03]
    assert [r["status"] for r in rows] == ["done", "done", "diverged", "unfinished", "done"]
    table = (tmp_path / "summary.md").read_text()
    assert "| 0.001 | 1 |" in table and "**best**" in table.splitlines()[5]
    assert "warning" not in table
    with open(tmp_path / "summary.csv") as f:
        assert len(list(csv.DictReader(f))) == 5
    # Move the best to the lowest LR: the summary must say the range is too narrow.
    (tmp_path / "0" / "metrics.json").write_text(
        json.dumps({"step": 2, "train/loss": 0.5, HEADLINE: GOOD + (GOOD - BAD)})
    )
    summarise_sweep(tmp_path, ["optim.lr"], plot=False)
    assert "is the lowest value swept" in (tmp_path / "summary.md").read_text()


def test_ablation_summary_shows_the_change_against_the_full_model(tmp_path):
    fake_job(tmp_path, 0, "ablation=no_thing", [2.0, 1.5], BAD)
    fake_job(tmp_path, 1, "ablation=none", [2.0, 1.0], GOOD)
    rows = summarise_sweep(tmp_path, ["ablation"])
    assert rows[0]["change vs none"] == pytest.approx(BAD - GOOD)
    assert "change vs none" in (tmp_path / "summary.md").read_text()


def test_every_ablation_switches_something_off(cfg):
    full = OmegaConf.to_container(cfg, resolve=True)
    options = sorted(p.stem for p in (CONFIG_DIR / "ablation").glob("*.yaml"))
    assert "none" in options and len(options) >= 3
    for name in options:
        ablated = OmegaConf.to_container(compose_config(f"ablation={name}"), resolve=True)
        assert (ablated == full) == (name == "none"), name


@pytest.fixture
def run_sweep(run_train_command):
    """``run_sweep(sweep_dir, *overrides)``: a multirun of short jobs, in this process."""
    return lambda sweep_dir, *overrides: run_train_command(
        "-m", *overrides, *TINY, f"hydra.sweep.dir={sweep_dir}"
    )


@pytest.mark.slow
def test_lr_sweep_summarises_every_job_and_resumes_without_redoing_work(tmp_path, run_sweep):
    # Three LRs, the last absurd (and unclipped) so that it diverges.
    lrs = ["sweep=lr", "optim.lr=1e-4,1e-2,1e30", "optim.grad_clip=1e30"]
    run_sweep(tmp_path, *lrs)
    with open(tmp_path / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["optim.lr"]) for r in rows] == [1e-4, 1e-2, 1e30]
    assert [r["status"] for r in rows] == ["done", "done", "diverged"]
    assert (tmp_path / "summary.png").stat().st_size > 1000
    # Every job starts from the same weights: identical validation metrics at step 0.
    at_init = [(tmp_path / str(i) / "metrics.jsonl").read_text().splitlines()[0] for i in range(3)]
    assert len(set(at_init)) == 1

    # A "crash": job 1 lost its final results but kept its checkpoint.
    (tmp_path / "1" / "metrics.json").unlink()
    finished_log = (tmp_path / "0" / "metrics.jsonl").stat().st_mtime_ns
    run_sweep(tmp_path, *lrs)
    assert (tmp_path / "0" / "metrics.jsonl").stat().st_mtime_ns == finished_log
    assert "resuming" in (tmp_path / "1" / "train.log").read_text()
    assert "not repeating it" in (tmp_path / "2" / "train.log").read_text()
    with open(tmp_path / "summary.csv") as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["done", "done", "diverged"]


@pytest.mark.slow
def test_ablation_sweep_runs_one_job_per_ablation(tmp_path, run_sweep):
    run_sweep(tmp_path, "sweep=ablation")
    with open(tmp_path / "summary.csv") as f:
        names = sorted(r["ablation"] for r in csv.DictReader(f))
    assert names == sorted(p.stem for p in (CONFIG_DIR / "ablation").glob("*.yaml"))


@pytest.mark.slow
def test_optuna_search_with_sqlite_storage_when_installed(tmp_path, run_sweep):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install -e '.[optuna]'")
    import optuna

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    run_sweep(
        tmp_path / "sweep",
        "sweep=optuna",
        "hydra.sweeper.n_trials=2",
        f"hydra.sweeper.storage={storage}",
    )
    # The study lives in the database (the SQLAlchemy pin matters here) with both trials.
    (study,) = optuna.study.get_all_study_summaries(storage=storage)
    assert study.n_trials == 2
    # The objective's direction follows loss.HEADLINE_MODE (a resolver in schema.py).
    assert study.direction.name == ("MAXIMIZE" if HEADLINE_MODE == "max" else "MINIMIZE")
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert set(results["best_params"]) == {"optim.lr", "optim.weight_decay"}


@pytest.mark.slow
def test_local_submitit_launcher_runs_the_jobs_when_installed(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install -e '.[slurm]'")
    # The real command: the launcher starts a process per job and pickles main() for it.
    command = [
        sys.executable, "-m", "{{ cookiecutter.package_name }}.train", "-m", "hydra/launcher=local",
        "seed=0,1", *TINY, f"hydra.sweep.dir={tmp_path}",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    finals = [json.loads((tmp_path / str(i) / "metrics.json").read_text()) for i in (0, 1)]
    assert [f["step"] for f in finals] == [6, 6]
