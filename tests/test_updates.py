"""Template updates with cruft: a baked project can pull later template changes.

cruft bakes from the template's committed HEAD, so these tests commit a copy of
the current working tree (uncommitted edits included) into a scratch repository.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEMPLATE, project_files

GIT = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"]


def sh(*command: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result


def cruft(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return sh(sys.executable, "-m", "cruft", *args, cwd=cwd, check=check)


@pytest.fixture
def template_repo(tmp_path) -> Path:
    repo = tmp_path / "template"
    ignore = shutil.ignore_patterns(".git", ".venv", "baked", "__pycache__", ".*_cache")
    shutil.copytree(TEMPLATE, repo, ignore=ignore)
    sh(*GIT, "init", "-q", cwd=repo)
    sh(*GIT, "add", "-A", cwd=repo)
    sh(*GIT, "commit", "-qm", "template", cwd=repo)
    return repo


def test_cruft_create_check_and_update(template_repo, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    cruft("create", "--no-input", "--output-dir", str(out), str(template_repo), cwd=tmp_path)
    project = out / "attention-is-all-you-need"
    recorded = json.loads((project / ".cruft.json").read_text())
    assert recorded["context"]["cookiecutter"]["paper_type"] == "transformer"
    assert not (project / "_paper_types").exists()  # the post-generation hook ran
    sh(*GIT, "init", "-q", cwd=project)
    sh(*GIT, "add", "-A", cwd=project)
    sh(*GIT, "commit", "-qm", "baked", cwd=project)
    cruft("check", cwd=project)

    # The template changes: one shared file and one per-type file.
    line = "A line added to the template after the project was baked."
    for rel in (
        "{{cookiecutter.paper_slug}}/CHECKPOINTS.md",
        "{{cookiecutter.paper_slug}}/_paper_types/transformer/tests/test_data.py",
    ):
        with open(template_repo / rel, "a", encoding="utf-8") as f:
            f.write(f"# {line}\n" if rel.endswith(".py") else f"\n{line}\n")
    sh(*GIT, "commit", "-qam", "change", cwd=template_repo)
    assert cruft("check", cwd=project, check=False).returncode != 0

    cruft("update", "-y", cwd=project)
    assert (project / "CHECKPOINTS.md").read_text().endswith(f"\n{line}\n")
    assert (project / "tests" / "test_data.py").read_text().endswith(f"# {line}\n")
    changed = set(sh("git", "diff", "HEAD", "--name-only", cwd=project).stdout.split())
    assert changed == {".cruft.json", "CHECKPOINTS.md", "tests/test_data.py"}
    cruft("check", cwd=project)


# The last template commit whose package was flat (data.py beside runtime.py,
# gauntlet.py, ...), before engine/ and judge/ held the machinery and the tools.
FLAT_LAYOUT = "f5f171a835b9887a2c4b371cc86f91275389e4ca"


def test_a_project_baked_with_the_flat_layout_updates_to_the_current_one(tmp_path):
    """cruft update moves a project baked before the layout change into the new
    layout, keeping the user's own edit to data.py, and ends with exactly the files
    (and, for every file the user did not touch, the contents) of a fresh bake."""
    history = sh("git", "cat-file", "-e", f"{FLAT_LAYOUT}^{{commit}}", cwd=TEMPLATE, check=False)
    if history.returncode != 0:
        pytest.skip(f"this clone lacks commit {FLAT_LAYOUT[:7]} (a shallow clone)")
    # A scratch template repository: the flat layout first, the current tree next.
    repo = tmp_path / "template"
    repo.mkdir()
    archive = subprocess.run(
        ["git", "archive", FLAT_LAYOUT], cwd=TEMPLATE, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(repo)], input=archive, check=True)
    sh(*GIT, "init", "-q", cwd=repo)
    sh(*GIT, "add", "-A", cwd=repo)
    sh(*GIT, "commit", "-qm", "flat layout", cwd=repo)
    out = tmp_path / "out"
    out.mkdir()
    cruft("create", "--no-input", "--output-dir", str(out), str(repo), cwd=tmp_path)
    project = out / "attention-is-all-you-need"
    pkg = project / "src" / "attention_is_all_you_need"
    assert (pkg / "gauntlet.py").is_file() and not (pkg / "judge").exists()
    mine = "# The user's own line: the update must keep it.\n"
    with open(pkg / "data.py", "a", encoding="utf-8") as f:
        f.write(mine)
    sh(*GIT, "init", "-q", cwd=project)
    sh(*GIT, "add", "-A", cwd=project)
    sh(*GIT, "commit", "-qm", "baked, then edited", cwd=project)

    sh("git", "rm", "-rq", ".", cwd=repo)
    ignore = shutil.ignore_patterns(".git", ".venv", "baked", "__pycache__", ".*_cache")
    shutil.copytree(TEMPLATE, repo, ignore=ignore, dirs_exist_ok=True)
    sh(*GIT, "add", "-A", cwd=repo)
    sh(*GIT, "commit", "-qm", "engine/ and judge/", cwd=repo)
    cruft("update", "-y", cwd=project)

    fresh_out = tmp_path / "fresh"
    fresh_out.mkdir()
    cruft("create", "--no-input", "--output-dir", str(fresh_out), str(repo), cwd=tmp_path)
    fresh = fresh_out / "attention-is-all-you-need"
    updated = {p for p in project_files(project) if not p.startswith(".git/")}
    assert updated == project_files(fresh)
    for rel in sorted(updated - {".cruft.json"}):
        ours, theirs = (project / rel).read_bytes(), (fresh / rel).read_bytes()
        if rel.endswith("/data.py"):
            assert ours == theirs + mine.encode(), "the user's edit to data.py was lost"
        else:
            assert ours == theirs, f"{rel} differs from a fresh bake after the update"
