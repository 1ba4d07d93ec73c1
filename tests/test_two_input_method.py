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
TWO_INPUT = {"data": "noised_digits", "model": "denoiser", "loss": "l_simple"}
# A method of another shape: two players (an actor and a critic with their own
# optimisers) that learn from rewards they sample (fixtures/actor_critic_bandit/).
ACTOR_CRITIC = Path(__file__).resolve().parent / "fixtures" / "actor_critic_bandit"
# A method whose splits are Datasets of files on disk, read by DataLoader workers
# (fixtures/file_dataset_method/).
FILE_DATASET = Path(__file__).resolve().parent / "fixtures" / "file_dataset_method"
FILE_DATASET_NAMES = {"data": "digit_files", "model": "small_cnn", "loss": "cross_entropy"}
ACTOR_CRITIC_NAMES = {"data": "bandit_digits", "model": "actor_critic", "loss": "policy_gradient",
                      "players": "actor_critic"}  # fmt: skip
# The bundled example's own tests: they test its data, model and loss, which the
# swap removes (a user replaces them with the new method's).
EXAMPLE_TESTS = ("test_data.py", "test_model.py", "test_loss.py", "test_*_pitfalls.py")


def swap_in(project: Path, method: Path = METHOD, names=TWO_INPUT) -> None:
    """Put the method's modules and configs where the example's were, as a user
    replacing the example would; point train.yaml's defaults at its configs
    (``names``: group -> the method's config; "players" adds that group)."""
    package = project / "src" / PKG
    for module in ("data.py", "model.py", "loss.py"):
        shutil.copy(method / module, package / module)
    configs = package / "configs"
    for group in ("data", "model", "loss", "experiment", "trainer", "ablation", "players"):
        for old in (configs / group).glob("*.yaml"):
            if old.name != "none.yaml":  # the ablation sweep's full-model row stays
                old.unlink()
        for new in (method / "configs" / group).glob("*.yaml"):
            (configs / group).mkdir(exist_ok=True)
            shutil.copy(new, configs / group / new.name)
    train_yaml = configs / "train.yaml"
    text = train_yaml.read_text()
    for group in ("data", "model", "loss"):
        text, found = re.subn(rf"^  - {group}: \S+", f"  - {group}: {names[group]}", text, flags=re.M)
        assert found == 1, f"train.yaml has no '- {group}: ...' default"
    if "players" in names:  # a user declaring players adds the group after trainer
        players = f"  - trainer: default\n  - players: {names['players']}\n"
        text = text.replace("  - trainer: default\n", players)
    train_yaml.write_text(text)
    for pattern in EXAMPLE_TESTS:
        for test in (project / "tests").glob(pattern):
            test.unlink()
    # The method's own list of built-ins its model and loss must not use, and its
    # own reference numbers (the example's name the example's ablations).
    shutil.copy(method / "write_yourself.txt", project / "tests" / "write_yourself.txt")
    shutil.copy(method / "reference_numbers.yaml", project / "reference_numbers.yaml")


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
    passed(run([*PYTEST, *slow], cwd=project))
    for lint in (["check", "."], ["format", "--check", "."]):
        linted = run([sys.executable, "-m", "ruff", *lint, "--no-cache"], cwd=project)
        assert linted.returncode == 0, linted.stdout[-3000:]


PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"]


def swapped_in_and_passing(cookies, method: Path, names: dict) -> Path:
    """A baked project with ``method`` swapped in, after its default suite passed
    with no skips but declared n/a checks and the integer-inputs test (no such
    inputs). The docs name the example's own tests, which the swap removed: that
    check is the docs' (a user updates them with the tests), not the method's."""
    project = bake_ok(cookies, paper_type="vision")
    swap_in(project, method, names)
    docs = "tests/test_checkpoints.py::test_every_test_the_docs_name_exists"
    result = run([*PYTEST, "--deselect", docs], cwd=project)
    passed(result)
    skipped = re.findall(r"SKIPPED \[\d+\] (\S+): (.*)", result.stdout)
    assert {reason.split(":")[0] for _, reason in skipped} <= {"n/a", "no integer inputs"}, skipped
    return project


# Bugs a two-player method can have that a generic test must catch, each planted by
# replacing one line of the method's loss.py or model.py: (file, line, replacement,
# the generic test that must fail).
TWO_PLAYER_BUGS = {
    # The critic's value computed after a detached first layer: that layer never learns.
    "detached critic layer": (
        "loss.py",
        '    value = model.critic(batch["inputs"]).squeeze(-1)',
        '    value = model.critic[1:](model.critic[0](batch["inputs"]).detach()).squeeze(-1)',
        "tests/test_gradients.py::test_every_parameter_gets_a_finite_nonzero_gradient",
    ),
    # The actor's loss also shrinks the critic's weights in place (a stray weight
    # clipping or decay written into the wrong player's loss): the loop refuses it.
    "actor writes the critic's weights": (
        "loss.py",
        '    log_pi = F.log_softmax(outputs["logits"], dim=1)',
        '    model.critic[2].weight.data.mul_(0.999)\n    log_pi = F.log_softmax(outputs["logits"], dim=1)',
        "tests/test_end_to_end.py::test_training_writes_metrics_and_checkpoint",
    ),
    # The actor's loss with its sign flipped: it learns to avoid the label.
    "actor maximises its loss": (
        "loss.py",
        "    return (-(reward - baseline) * chosen - cfg.entropy_weight * entropy).mean()",
        "    return ((reward - baseline) * chosen - cfg.entropy_weight * entropy).mean()",
        "tests/test_overfit.py::test_model_memorises_a_few_examples",
    ),
}


def test_the_generic_checks_guard_a_two_player_method(cookies):
    """An actor and a critic, each with its own optimiser and loss (loss.PLAYERS),
    learning from sampled rewards: the generic default suite, the slow loop, resume
    and data-parallel tests and the gauntlet pass on it with no skip list (one
    check it declares not applicable, in loss.NOT_APPLICABLE, with its reason), and
    each planted two-player bug turns a generic test red."""
    project = swapped_in_and_passing(cookies, ACTOR_CRITIC, ACTOR_CRITIC_NAMES)
    data_parallel = "tests/test_speed_and_scale.py::test_two_process_data_parallel_run_matches_one_process"
    slow = ["-m", "slow", "tests/test_loop.py", "tests/test_resume.py", "tests/test_gauntlet.py",
            data_parallel]  # fmt: skip
    passed(run([*PYTEST, *slow], cwd=project))
    each_bug_is_caught(project, TWO_PLAYER_BUGS)


def each_bug_is_caught(project: Path, bugs: dict) -> None:
    """Plant each bug (a line of a module replaced), run the test that must catch
    it, restore the module."""
    for bug, (module, line, planted, catches) in bugs.items():
        path = project / "src" / PKG / module
        original = path.read_text()
        assert original.count(line) == 1, f"{bug}: the line to replace is not in {module}"
        path.write_text(original.replace(line, planted))
        try:
            caught = run([*PYTEST, "-m", "slow or not slow", catches], cwd=project)
        finally:
            path.write_text(original)
        # Red: a failed test, or an error in its fixture (a run the loop refused).
        red = re.search(r"\d+ (failed|error)", caught.stdout.strip().splitlines()[-1])
        assert caught.returncode == 1 and red, f"{bug}: {catches} passed"


FILE_DATASET_BUGS = {
    # The label list out of step with the file list (sorted or shuffled apart).
    "labels apart from their files": (
        "data.py",
        "        label = torch.tensor(int(self.files[i].parent.name))",
        "        label = torch.tensor(int(self.files[(7 * i) % len(self.files)].parent.name))",
        "tests/test_data_path.py::test_every_example_keeps_its_own_target",
    ),
    # The random shift applied in the Dataset, to every split, from torch's generator.
    "val and test shifted at random": (
        "data.py",
        "        inputs = ((pixels - self.mean) / self.std).unsqueeze(0)",
        "        inputs = ((pixels - self.mean) / self.std).unsqueeze(0)"
        ".roll(int(torch.randint(-1, 2, ())), dims=2)",
        "tests/test_data_path.py::test_evaluation_examples_are_the_same_every_time_they_are_read",
    ),
    # The mean and std of the test files standardise every split.
    "normalisation statistics from the test split": (
        "data.py",
        'for f in sorted((root / "train").glob("*/*.npy"))])',
        'for f in sorted((root / "test").glob("*/*.npy"))])',
        "tests/test_data_path.py::test_preprocessing_statistics_come_from_the_training_split",
    ),
}


def test_the_generic_checks_pass_on_a_method_whose_splits_are_files_read_by_workers(cookies):
    """Splits that are Datasets of image files (written once outside the package),
    training batches streamed by two DataLoader workers (engine/loader.py) with a
    random shift drawn per example: the generic default suite and the slow loop,
    resume (SIGKILL included), data-path and gauntlet tests pass with no skip list,
    and each planted data bug turns a generic test red."""
    project = swapped_in_and_passing(cookies, FILE_DATASET, FILE_DATASET_NAMES)
    assert sorted((project / "data" / "digit_files").glob("*/train/*/*.npy")), "no files written"
    slow = ["-m", "slow", "tests/test_loop.py", "tests/test_resume.py", "tests/test_data_path.py",
            "tests/test_gauntlet.py", "tests/test_loader.py", "tests/test_overfit.py"]  # fmt: skip
    passed(run([*PYTEST, *slow], cwd=project))
    each_bug_is_caught(project, FILE_DATASET_BUGS)


# The classic data bugs of a reproduction that reads image files, planted in the
# bundled vision example's data.py (PNG files in an ImageFolder tree, 2 workers):
# each turns a generic test red, not only the example's own. Two of them need a
# directory listing in no particular order: what Linux's ext4 and tmpfs give (macOS's
# APFS lists sorted, which hides them there: the bugs that pass on one machine).
LISTED = '        return [(path, class_index[path.parent.name]) for path in sorted(folder.glob("*/*.png"))]'
VISION_DATA_BUGS = {
    # The training shift left in the Dataset: every split, from torch's generator.
    "random shift applied to every split": (
        "data.py",
        '            "inputs": (read_image(path) - self.mean) / self.std,',
        '            "inputs": random_shift((read_image(path) - self.mean) / self.std, 1, '
        "torch.default_generator),",
        "tests/test_data_path.py::test_evaluation_examples_are_the_same_every_time_they_are_read",
    ),
    # Each split numbers the classes in its own directory listing's order.
    "class map built per split from an unsorted listing": (
        "data.py",
        LISTED,
        "        own = {name: i for i, name in enumerate(os.listdir(folder))}\n"
        '        return [(path, own[path.parent.name]) for path in sorted(folder.glob("*/*.png"))]',
        "tests/test_data_path.py::test_every_example_keeps_its_own_target",
    ),
    "normalisation statistics from the test split": (
        "data.py",
        '    mean, std = channel_statistics(samples["train"])',
        '    mean, std = channel_statistics(samples["test"])',
        "tests/test_data_path.py::test_preprocessing_statistics_come_from_the_training_split",
    ),
    "normalisation statistics from all the data": (
        "data.py",
        '    mean, std = channel_statistics(samples["train"])',
        '    mean, std = channel_statistics(samples["train"] + samples["val"] + samples["test"])',
        "tests/test_data_path.py::test_preprocessing_statistics_come_from_the_training_split",
    ),
    # Labels listed in the directory's order, files sorted: paired apart.
    "paths and labels shuffled apart": (
        "data.py",
        LISTED,
        '        labels = [class_index[p.parent.name] for p in folder.glob("*/*.png")]\n'
        '        return list(zip(sorted(folder.glob("*/*.png")), labels))',
        "tests/test_data_path.py::test_every_example_keeps_its_own_target",
    ),
}


def test_data_bugs_planted_in_the_vision_example_turn_a_generic_test_red(cookies):
    project = bake_ok(cookies, paper_type="vision")
    each_bug_is_caught(project, VISION_DATA_BUGS)
