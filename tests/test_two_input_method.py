"""The promise of the generic tests: replace data.py, model.py and loss.py with
another method's and they still run, through the contract alone.

The method swapped in (tests/fixtures/two_input_method/) is none of the bundled
examples: a conditional denoiser whose model takes two inputs,
{"x_t": float [B, 64], "t": int64 [B]}, whose spec carries a float noise schedule,
whose batch transform draws noise from the data generator, and whose
split_metrics samples from the model. The baked project's default suite (the
generic tests, the example's own removed) and its linters must pass on it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import bake_ok

pytestmark = pytest.mark.slow
PKG = "attention_is_all_you_need"
METHOD = Path(__file__).resolve().parent / "fixtures" / "two_input_method"
# The bundled example's own tests: they test its data, model and loss, which the
# swap removes (a user replaces them with the new method's).
EXAMPLE_TESTS = ("test_data.py", "test_model.py", "test_loss.py", "test_*_pitfalls.py")


def swap_in(project: Path) -> None:
    """Put the method's modules and configs where the example's were, as a user
    replacing the example would; point train.yaml's defaults at its configs."""
    package = project / "src" / PKG
    for module in ("data.py", "model.py", "loss.py"):
        shutil.copy(METHOD / module, package / module)
    configs = package / "configs"
    for group in ("data", "model", "loss", "experiment", "trainer", "ablation"):
        for old in (configs / group).glob("*.yaml"):
            if old.name != "none.yaml":  # the ablation sweep's full-model row stays
                old.unlink()
        for new in (METHOD / "configs" / group).glob("*.yaml"):
            shutil.copy(new, configs / group / new.name)
    train_yaml = configs / "train.yaml"
    text = train_yaml.read_text()
    for group, name in (("data", "noised_digits"), ("model", "denoiser"), ("loss", "l_simple")):
        text, found = re.subn(rf"^  - {group}: \S+", f"  - {group}: {name}", text, flags=re.M)
        assert found == 1, f"train.yaml has no '- {group}: ...' default"
    train_yaml.write_text(text)
    for pattern in EXAMPLE_TESTS:
        for test in (project / "tests").glob(pattern):
            test.unlink()
    # The method's own list of built-ins its model and loss must not use, and its
    # own reference numbers (the example's name the example's ablations).
    shutil.copy(METHOD / "write_yourself.txt", project / "tests" / "write_yourself.txt")
    shutil.copy(METHOD / "reference_numbers.yaml", project / "reference_numbers.yaml")


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900, env=env)


def passed(result: subprocess.CompletedProcess) -> str:
    """The pytest summary line, having checked that it says all passed."""
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"\d+ passed", summary) and "failed" not in summary, summary
    return summary


def test_the_generic_suite_passes_on_a_two_input_method(cookies):
    project = bake_ok(cookies, paper_type="vision")
    swap_in(project)
    pytest_command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    # The docs name the example's own tests, which the swap removed: that check is
    # the docs' (a user updates them with the tests), not the method's.
    docs = "tests/test_checkpoints.py::test_every_test_the_docs_name_exists"
    passed(run([*pytest_command, "--deselect", docs], cwd=project))
    # The slow checks whose inputs change with a dict of inputs: overfit 100, the
    # gauntlet (its input baseline keeps t) and the baseline on real batches.
    slow = ["-m", "slow", "tests/test_overfit.py", "tests/test_gauntlet.py", "tests/test_data_path.py"]
    passed(run([*pytest_command, *slow], cwd=project))
    for lint in (["check", "."], ["format", "--check", "."]):
        linted = run([sys.executable, "-m", "ruff", *lint, "--no-cache"], cwd=project)
        assert linted.returncode == 0, linted.stdout[-3000:]
