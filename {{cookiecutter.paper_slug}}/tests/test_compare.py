"""Numbers match: judge/compare.py passes a run at the paper's values, fails on a doctored
or missing metric, and over seeds says matches, OFF or inconclusive (each with its
exit status, so a CI job can gate on it); effect, order and bound claims are judged
the same way. The Student-t quantile behind the intervals matches published tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.configs.schema import (
    CONFIG_DIR,
)
from {{ cookiecutter.package_name }}.engine.stats import (
    difference_interval,
    mean_interval,
    seeds_to_fit,
    t_quantile,
)
from {{ cookiecutter.package_name }}.judge.compare import (
    INCONCLUSIVE,
    Runs,
    check,
    load_runs,
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
    (run_dir / "metrics.json").write_text(json.dumps({"step": 1}))
    return run_dir


def write_sweep(sweep_dir: Path, jobs: list[tuple[dict[str, str], dict[str, float]]]) -> Path:
    """A sweep directory: one job per (overrides, metrics), as Hydra and the sweep leave it."""
    for num, (overrides, values) in enumerate(jobs):
        job = write_run(sweep_dir / str(num), values)
        (job / ".hydra").mkdir()
        lines = [f"{key}={value}" for key, value in overrides.items()]
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(lines))
    return sweep_dir


def write_references(path: Path, entries: list[dict]) -> str:
    path.write_text(yaml.safe_dump(entries))
    return str(path)


REF = [{"metric": "test/acc", "paper": 0.90, "tolerance": 0.02, "where": "Table 1"}]


@pytest.fixture
def numbers() -> list[dict]:
    """The number entries of the project's references file (a file of bounds and
    claims only: a stand-in number)."""
    entries = [e for e in yaml.safe_load(REFERENCES.read_text()) if "paper" in e]
    for entry in entries:
        assert {"metric", "paper", "tolerance", "where"} <= set(entry), entry
        assert entry["tolerance"] > 0
    return entries or REF


@pytest.mark.parametrize(
    "p, df, published",
    [(0.975, 1, 12.706), (0.975, 2, 4.303), (0.975, 4, 2.776), (0.975, 9, 2.262),
     (0.975, 30, 2.042), (0.975, 1000, 1.962), (0.95, 3, 2.353), (0.995, 5, 4.032)],
)  # fmt: skip
def test_t_quantile_matches_published_tables(p, df, published):
    assert t_quantile(p, df) == pytest.approx(published, abs=1e-3)


def test_interval_half_width_and_the_seeds_that_would_fit_a_margin():
    interval = mean_interval([1.0, 2.0, 3.0])  # mean 2, std 1
    assert (interval.mean, interval.std) == (2.0, 1.0)
    assert interval.high - 2.0 == pytest.approx(4.303 / 3**0.5, abs=1e-3)
    # n = 7: t(0.975, 6) = 2.447, 2.447 / sqrt(7) = 0.925 <= 1; n = 6: 1.049 > 1.
    assert seeds_to_fit(std=1.0, margin=1.0) == 7
    # Welch, equal spreads: the difference of two groups of 3.
    diff = difference_interval([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    assert diff.mean == pytest.approx(1.0)
    assert diff.high - 1.0 == pytest.approx(2.776 * (2 / 3) ** 0.5, abs=1e-3)  # df = 4


def test_a_run_at_the_paper_values_passes(numbers, tmp_path, capsys):
    refs = write_references(tmp_path / "refs.yaml", numbers)
    run = write_run(tmp_path / "run", {r["metric"]: r["paper"] for r in numbers})
    assert main([str(run), "--references", refs]) == 0
    table = capsys.readouterr().out
    assert table.startswith("| Metric | Paper | Ours |") and "OFF" not in table


def test_a_doctored_metric_fails(numbers, tmp_path, capsys):
    refs = write_references(tmp_path / "refs.yaml", numbers)
    doctored = {r["metric"]: r["paper"] + 2 * r["tolerance"] for r in numbers}
    assert main([str(write_run(tmp_path / "run", doctored)), "--references", refs]) == 1
    assert "OFF" in capsys.readouterr().out


def test_a_missing_metric_fails_and_says_how_to_get_it(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    assert main([str(run), "--references", str(REFERENCES)]) == 1
    out, err = capsys.readouterr()
    assert "missing" in out and "eval" in err


@pytest.mark.parametrize(
    "values, status, verdict",
    [
        ([0.895, 0.90, 0.905], 0, "matches"),  # interval [0.888, 0.912] inside 0.88..0.92
        ([0.80, 0.81, 0.79], 1, "OFF"),  # the whole interval below 0.88
        ([0.86, 0.90, 0.94], INCONCLUSIVE, "inconclusive: ~"),  # [0.80, 1.00] straddles both edges
    ],
)
def test_seeds_match_are_off_or_are_inconclusive_with_distinct_exit_status(
    tmp_path, capsys, values, status, verdict
):
    jobs = [({"seed": str(seed)}, {"test/acc": value}) for seed, value in enumerate(values)]
    sweep = write_sweep(tmp_path / "sweep", jobs)
    refs, rows = write_references(tmp_path / "r.yaml", REF), tmp_path / "rows.json"
    assert main([str(sweep), "--references", refs, "--json", str(rows)]) == status
    row = capsys.readouterr().out.splitlines()[2]
    assert verdict in row and "(n=3)" in row
    # The same verdict for scripts (--json): the printed row's, with the estimate.
    (record,) = json.loads(rows.read_text())
    assert record["verdict"] in verdict and record["n"] == 3
    assert record["mean"] == pytest.approx(sum(values) / 3)
    if status == INCONCLUSIVE:
        # std 0.04 against a margin of 0.02: t(n-1) * 0.04 / sqrt(n) <= 0.02 from n = 18.
        assert "~18 seeds would settle it" in row


def test_effect_order_and_bound_claims_are_judged_over_seeds(tmp_path):
    # An ablation sweep with 3 seeds: the full model, one ablation that hurts a lot,
    # one that hurts a little (inside its spread).
    full, hurt, slight = [0.95, 0.96, 0.97], [0.50, 0.55, 0.45], [0.94, 0.97, 0.92]
    jobs = []
    for ablation, values in (("none", full), ("no_a", hurt), ("no_b", slight)):
        for seed, value in enumerate(values):
            jobs.append(({"ablation": ablation, "seed": str(seed)}, {"test/acc": value}))
    # The full model also reports a baseline's number, paired by seed.
    for seed, (_, metrics) in enumerate(jobs[:3]):
        metrics["test/baseline_acc"] = 0.60 + 0.01 * seed
    sweep = write_sweep(tmp_path / "sweep", jobs)
    claims = [
        {"ablation": "no_a", "metric": "test/acc", "lowers_by": 0.3},  # holds: ~0.43
        {"ablation": "no_a", "metric": "test/acc", "lowers_by": 0.6},  # fails
        {"ablation": "no_b", "metric": "test/acc", "lowers_by": 0.01},  # inconclusive
        {"order": ["none", "no_a"], "metric": "test/acc", "better": "higher"},  # holds
        {"order": ["no_a", "none"], "metric": "test/acc", "better": "higher"},  # fails
        {"order": ["test/acc", "test/baseline_acc"], "better": "higher", "by": 0.3},  # holds
        {"metric": "test/acc", "at_least": 0.9},  # holds
        {"metric": "test/acc", "at_most": 0.9},  # fails
        {"ablation": "no_c", "metric": "test/acc", "raises_by": 0.1},  # no such run: missing
    ]
    verdicts = [r.verdict for r in check(claims, load_runs(sweep))]
    assert verdicts == [
        "holds", "FAILS", "inconclusive", "holds", "FAILS", "holds", "holds", "FAILS", "missing",
    ]  # fmt: skip
    # On a plain seed sweep the ablation claims cannot be checked, and say so.
    seeds = write_sweep(tmp_path / "seeds", jobs[:3])
    result = check(claims[:1], load_runs(seeds))[0]
    assert result.verdict == "not checked" and "sweep=ablation" in result.detail


def test_one_run_is_judged_by_its_value_without_an_interval():
    runs = Runs(points={"none": [{"test/acc": 0.91}]})
    (number, bound) = check([REF[0], {"metric": "test/acc", "at_least": 0.95}], runs)
    assert number.verdict == "matches" and bound.verdict == "FAILS"
    assert number.estimate.n == 1


def test_every_claim_in_the_references_names_real_ablations_and_a_known_kind():
    # The claims the file has, whichever they are: a paper that makes no ablation
    # claim ships none, and that is no failure.
    entries = yaml.safe_load(REFERENCES.read_text()) or []
    points = {path.stem for path in (CONFIG_DIR / "ablation").glob("*.yaml")}
    for entry in entries:
        if "ablation" in entry:
            assert entry["ablation"] in points, f"no configs/ablation/{entry['ablation']}.yaml"
            assert ("lowers_by" in entry) != ("raises_by" in entry), entry
        if "order" in entry and "metric" in entry:  # two sweep points
            assert set(entry["order"]) <= points, f"{entry['order']}: not all in {sorted(points)}"
    # Every entry is one of the four kinds compare knows (an unknown one raises).
    assert len(check(entries, Runs())) == len(entries)


def test_compare_refuses_a_sweep_over_anything_but_seeds_and_ablations(tmp_path, capsys):
    jobs = [({"optim.lr": lr}, {"test/acc": 0.9}) for lr in ("1e-3", "1e-2")]
    sweep = write_sweep(tmp_path / "sweep", jobs)
    assert main([str(sweep), "--references", write_references(tmp_path / "r.yaml", REF)]) == 2
    assert "sweeps optim.lr" in capsys.readouterr().err
