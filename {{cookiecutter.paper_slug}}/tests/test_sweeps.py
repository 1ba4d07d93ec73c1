"""Sweeps: the LR range test, ablations and seeds as Hydra multiruns, their summary
(ranking by the last evaluations, divergence, statistics over seeds), resume."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import pytest
import yaml
from omegaconf import OmegaConf

from {{ cookiecutter.package_name }}.configs.schema import (
    CONFIG_DIR,
    compose_config,
)
from {{ cookiecutter.package_name }}.engine.ckpt import (
    load_checkpoint,
)
from {{ cookiecutter.package_name }}.engine.run_log import (
    reported_checkpoint,
)
from {{ cookiecutter.package_name }}.judge.sweeps import (
    DIVERGE_FACTOR,
    LAST_K,
    diverged_reason,
    evaluate_test,
    score_name,
    summarise_sweep,
)
from {{ cookiecutter.package_name }}.loss import (
    HEADLINE_METRIC,
    HEADLINE_MODE,
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


def fake_job(
    sweep_dir,
    num: int,
    override: str | list[str],
    losses: list[float],
    headline: float | None,
    evaluations: list[float] = (),
    extra: dict | None = None,
):
    """A job directory as Hydra and train.py leave it: ``evaluations`` are the
    validation headline values logged during training (the last one is the final
    value unless ``headline`` says otherwise)."""
    job = sweep_dir / str(num)
    (job / ".hydra").mkdir(parents=True)
    overrides = [override] if isinstance(override, str) else override
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    # Step 0: the validation metric at initialisation (BAD), then the train losses.
    records = [{"step": 0, HEADLINE: BAD}]
    records += [{"step": i + 1, "train/loss": loss} for i, loss in enumerate(losses)]
    records += [{"step": len(losses) + i + 1, HEADLINE: v} for i, v in enumerate(evaluations)]
    (job / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if headline is not None:
        final = {"step": len(losses), "train/loss": losses[-1], HEADLINE: headline, **(extra or {})}
        (job / "metrics.json").write_text(json.dumps(final))


@pytest.mark.parametrize("choice", ["last", "best"])
def test_the_test_split_is_reported_from_the_checkpoint_the_config_chooses(
    quick_cfg, quick_run, tmp_path, choice
):
    # trainer.test_checkpoint=best (early stopping chosen on validation) reports the
    # best validated weights; last, the run as it ended. A finished run records it.
    job = tmp_path / "job"
    shutil.copytree(quick_run, job)
    final = json.loads((job / "metrics.json").read_text())
    assert final["test_checkpoint"] == quick_cfg().trainer.test_checkpoint.value
    (job / "metrics.json").write_text(json.dumps({**final, "test_checkpoint": choice}))
    evaluation = json.loads(evaluate_test(job, device="cpu").read_text())
    chosen = load_checkpoint(job / "checkpoints" / f"{choice}.pt")
    assert evaluation["ckpt_path"] == str(job / "checkpoints" / f"{choice}.pt")
    assert evaluation["step"] == chosen["step"]
    # Evaluated once: a resumed sweep does not redo it, a new checkpoint does.
    evaluated = (job / "eval_test.json").stat().st_mtime_ns
    evaluate_test(job, device="cpu")
    assert (job / "eval_test.json").stat().st_mtime_ns == evaluated


def test_summary_ranks_jobs_flags_divergence_and_warns_at_the_edge(tmp_path):
    fake_job(tmp_path, 0, "optim.lr=1e-05", [2.0, 1.9], BAD)
    fake_job(tmp_path, 1, "optim.lr=0.001", [2.0, 1.0], GOOD)  # best, and in the middle
    fake_job(tmp_path, 2, "optim.lr=0.1", [2.0, 0.5, 2e7], BAD)  # 4e7 times its best: diverged
    fake_job(tmp_path, 3, "optim.lr=1.0", [2.0], None)  # crashed before the end
    fake_job(tmp_path, 4, "optim.lr=0.03", [0.5, 5.0], GOOD)  # 10x: an RL loss rising, not diverged
    # Without the plot (matplotlib, ~1 s): the slow LR sweep test checks summary.png.
    rows = summarise_sweep(tmp_path, ["optim.lr"], plot=False)
    assert [r["optim.lr"] for r in rows] == [1e-5, 1e-3, 0.1, 1.0, 0.03]
    assert [r["status"] for r in rows] == ["done", "done", "diverged", "unfinished", "done"]
    table = (tmp_path / "summary.md").read_text()
    assert "| 0.001 | 1 |" in table and "**best**" in table.splitlines()[7]
    assert "100x its best" in table  # the summary states its rules
    assert "warning" not in table
    with open(tmp_path / "summary.csv") as f:
        assert len(list(csv.DictReader(f))) == 5
    # Move the best to the lowest LR: the summary must say the range is too narrow.
    (tmp_path / "0" / "metrics.json").write_text(
        json.dumps({"step": 2, "train/loss": 0.5, HEADLINE: GOOD + (GOOD - BAD)})
    )
    summarise_sweep(tmp_path, ["optim.lr"], plot=False)
    assert "is the lowest value swept" in (tmp_path / "summary.md").read_text()


def test_a_loss_that_grew_far_beyond_its_best_is_diverged_and_a_rising_one_is_not():
    assert diverged_reason([0.5, 0.3, 2e7], DIVERGE_FACTOR)  # a TD loss of 2e7
    assert diverged_reason([1.0, float("nan")], DIVERGE_FACTOR)
    assert diverged_reason([0.5, 1.0, 20.0], DIVERGE_FACTOR) is None  # value loss as returns grow
    assert diverged_reason([2.0, 0.01, 0.9], DIVERGE_FACTOR) is None  # 90x: noisy, not diverged
    # A loss that can be negative grows against the larger of |best| and |first|.
    assert diverged_reason([1.0, -2.0, 500.0], DIVERGE_FACTOR)
    assert diverged_reason([1.0, -2.0, 1.0], DIVERGE_FACTOR) is None
    # A best near zero (or below it) is no scale: 20 after 10 is 2x where it started.
    assert diverged_reason([10.0, -0.1, 20.0], DIVERGE_FACTOR) is None


def test_a_job_is_ranked_by_its_last_evaluations_not_one_lucky_final_one(tmp_path):
    # Job 0 swung between good and bad and ended on a good evaluation (as the DQN
    # run with greedy returns 23..500 did); job 1 stayed almost as good throughout.
    middle = (GOOD + BAD) / 2
    steady = GOOD - (GOOD - BAD) / 10
    fake_job(tmp_path, 0, "optim.lr=0.003", [1.0, 0.9], GOOD, [BAD, BAD, GOOD])
    fake_job(tmp_path, 1, "optim.lr=0.001", [1.0, 0.9], steady, [steady] * 3)
    fake_job(tmp_path, 2, "optim.lr=0.0001", [1.0, 0.95], middle, [middle] * 3)
    rows = summarise_sweep(tmp_path, ["optim.lr"], plot=False)
    best = [r for r in (tmp_path / "summary.md").read_text().splitlines() if "**best**" in r]
    assert len(best) == 1 and best[0].startswith("| 0.001 |"), best
    assert rows[0][score_name(LAST_K)] == pytest.approx((2 * BAD + GOOD) / 3)
    # k = 1 ranks by the final evaluation alone: then the lucky job wins.
    summarise_sweep(tmp_path, ["optim.lr"], plot=False, last_k=1)
    best = [r for r in (tmp_path / "summary.md").read_text().splitlines() if "**best**" in r]
    assert best[0].startswith("| 0.003 |"), best


def test_ablation_summary_shows_the_change_against_the_full_model(tmp_path):
    fake_job(tmp_path, 0, "ablation=no_thing", [2.0, 1.5], BAD, [BAD])
    fake_job(tmp_path, 1, "ablation=none", [2.0, 1.0], GOOD, [GOOD])
    rows = summarise_sweep(tmp_path, ["ablation"], plot=False)
    assert rows[0]["change vs none"] == pytest.approx(BAD - GOOD)
    assert "change vs none" in (tmp_path / "summary.md").read_text()


def test_ablations_times_seeds_rank_by_the_mean_over_seeds_with_intervals(tmp_path):
    # The ablation has the single best job but the worse mean over its three seeds.
    results = {"none": [GOOD, GOOD, GOOD - (GOOD - BAD) / 5], "no_thing": [GOOD * 1.05, BAD, BAD]}
    num = 0
    for ablation, values in results.items():
        for seed, value in enumerate(values):
            extra = {"test/sample_quality": 0.1 * seed, "train_seconds": 1.0}
            overrides = [f"ablation={ablation}", f"seed={seed}"]
            fake_job(tmp_path, num, overrides, [1.0, 0.5], value, [value], extra)
            num += 1
    # Only ablation is configured as swept: the seeds are found in the overrides.
    summarise_sweep(tmp_path, ["ablation"], plot=False, columns=["test/sample_quality"])
    summary = (tmp_path / "summary.md").read_text()
    assert "Sweep over ablation, seed" in summary
    assert "### ablation=none **best**: 3 of 3 seeds finished" in summary
    assert "test/sample_quality" in summary.splitlines()[4]  # a chosen column in the job table
    assert "Student-t" in summary
    with open(tmp_path / "seeds.csv") as f:
        stats = {(r["point"], r["metric"]): r for r in csv.DictReader(f)}
    row = stats[("ablation=none", HEADLINE)]
    values = results["none"]
    mean = sum(values) / 3
    std = (sum((v - mean) ** 2 for v in values) / 2) ** 0.5
    assert float(row["mean"]) == pytest.approx(mean)
    assert float(row["std"]) == pytest.approx(std)
    half = 4.302653 * std / 3**0.5  # t(0.975, 2) = 4.3027
    assert float(row["ci_low"]) == pytest.approx(mean - half, rel=1e-5)
    assert [float(row[f"seed {s}"]) for s in range(3)] == pytest.approx(values)


def test_every_ablation_switches_something_off(cfg):
    full = OmegaConf.to_container(cfg, resolve=True)
    options = sorted(p.stem for p in (CONFIG_DIR / "ablation").glob("*.yaml"))
    assert "none" in options and len(options) >= 3
    for name in options:
        if name != "none":  # the default: cfg itself
            ablated = OmegaConf.to_container(compose_config(f"ablation={name}"), resolve=True)
            assert ablated != full, f"ablation={name} changes nothing"


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
def test_ablation_sweep_runs_every_ablation_with_every_seed(tmp_path, run_sweep):
    run_sweep(tmp_path, "sweep=ablation", "seed=range(2)")  # ablations x seeds, one sweep
    with open(tmp_path / "summary.csv") as f:
        names = sorted(r["ablation"] for r in csv.DictReader(f))
    ablations = sorted(p.stem for p in (CONFIG_DIR / "ablation").glob("*.yaml"))
    assert names == sorted(ablations * 2)
    assert all((tmp_path / str(i) / "eval_test.json").is_file() for i in range(len(names)))
    with open(tmp_path / "seeds.csv") as f:
        points = {r["point"] for r in csv.DictReader(f)}
    assert points == {f"ablation={name}" for name in ablations}


@pytest.mark.slow
def test_seed_sweep_evaluates_every_job_on_test_and_summarises_over_seeds(tmp_path, run_sweep):
    run_sweep(tmp_path, "sweep=seeds", "seed=range(2)")
    for job in ("0", "1"):
        evaluation = json.loads((tmp_path / job / "eval_test.json").read_text())
        reported = reported_checkpoint(tmp_path / job)  # last.pt, or best.pt by the config
        assert evaluation["split"] == "test" and evaluation["ckpt_path"] == str(reported)
        assert evaluation["step"] == load_checkpoint(reported)["step"]
    with open(tmp_path / "seeds.csv") as f:
        rows = {r["metric"]: r for r in csv.DictReader(f)}
    assert {f"test/{HEADLINE_METRIC}", HEADLINE, score_name(LAST_K)} <= set(rows)
    assert rows[HEADLINE]["n"] == "2" and rows[HEADLINE]["ci_low"]
    assert (tmp_path / "summary.png").stat().st_size > 1000  # per-seed curves and their mean
    # Resumed, a finished seed sweep redoes nothing, its test evaluation included.
    evaluated = (tmp_path / "0" / "eval_test.json").stat().st_mtime_ns
    run_sweep(tmp_path, "sweep=seeds", "seed=range(2)")
    assert (tmp_path / "0" / "eval_test.json").stat().st_mtime_ns == evaluated


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
    # The objective's direction follows loss.HEADLINE_MODE (a resolver in configs/schema.py).
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
