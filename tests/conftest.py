"""Helpers for the template's tests: bake with the real cookiecutter, read the result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TEMPLATE = Path(__file__).resolve().parent.parent
DEFAULTS = json.loads((TEMPLATE / "cookiecutter.json").read_text(encoding="utf-8"))
PAPER_TYPES = DEFAULTS["paper_type"]


def bake_ok(cookies, **context):
    """Bake with pytest-cookies (cookiecutter's API, hooks included); fail loudly."""
    result = cookies.bake(extra_context=context)
    assert result.exception is None, f"bake failed: {result.exception!r}"
    assert result.exit_code == 0
    # Unknown keys in extra_context are silently ignored by cookiecutter: make sure
    # every key the test meant to set is a real prompt.
    unknown = set(context) - set(DEFAULTS)
    assert not unknown, f"not prompts of this template: {unknown}"
    return result.project_path


def cookiecutter_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run the real `cookiecutter` command line, as a user would."""
    command = [sys.executable, "-m", "cookiecutter", "--no-input", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def project_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="session")
def default_project(cookies_session):
    """The project `cookiecutter --no-input` bakes, shared by read-only tests."""
    return bake_ok(cookies_session)
