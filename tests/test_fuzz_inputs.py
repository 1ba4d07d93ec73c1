"""Property-based bakes: any answer either bakes a valid project or fails in the
pre-generation hook with one line and leaves nothing behind.

The names' validity is decided here by an oracle written from the rules in the
README (not by calling the hook's code), so the hook is tested against the spec.
Run `pytest tests/test_fuzz_inputs.py --hypothesis-show-statistics` for counts.
"""

from __future__ import annotations

import importlib
import keyword
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
from conftest import TEMPLATE
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter
from hydra import compose, initialize_config_dir
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from test_user_text import first_heading

SHADOWED = {"torch", "hydra", "omegaconf", "numpy", "tqdm", "pytest", "test", "tests", "src"}
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Free text: any printable character (emoji and other scripts included), plus
# the characters that break naive quoting, and Jinja delimiters in the escaped
# form a user must type (cookiecutter renders answers as Jinja).
tricky = st.sampled_from(['"', "'", "\\", "`", "$", "#", ":", "|", "*", "_", "<", "&", "🚀", "{{ '{{' }}"])
printable = st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"))
free_text = st.lists(st.one_of(printable, tricky), min_size=1, max_size=500).map("".join)


def rendered(text: str) -> str:
    """What the user gets from an answer: escaped delimiters rendered, trimmed."""
    return text.replace("{{ '{{' }}", "{{").strip()


def raw_jinja(text: str) -> bool:
    return bool(re.search(r"\{\{|\{%|\{#", text.replace("{{ '{{' }}", "")))


def slug_ok(slug: str) -> bool:
    return bool(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug)) and len(slug) <= 64


def package_ok(name: str) -> bool:
    return (
        name.isascii()
        and name.isidentifier()
        and name == name.lower()
        and len(name) <= 64
        and not keyword.iskeyword(name)
        and not keyword.issoftkeyword(name)
        and name not in sys.stdlib_module_names
        and name not in SHADOWED
    )


def bake(out: Path, **context) -> Path:
    return Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(out), extra_context=context))


def check_project(project: Path, title: str) -> None:
    """Lint clean, TOML valid with the title intact, title verbatim in Markdown,
    the package imports and its configs compose."""
    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["description"] == f'Reproduction of "{rendered(title)}"'
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert first_heading(readme) == f"Reproducing: {rendered(title)}"
    for command in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--no-cache", "-q", "."],
            cwd=project, capture_output=True, text=True,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout
    package = next((project / "src").iterdir()).name
    sys.path.insert(0, str(project / "src"))
    try:
        importlib.import_module(f"{package}.train")
        importlib.import_module(f"{package}.eval")
        with initialize_config_dir(config_dir=str(project / "src" / package / "configs"), version_base="1.3"):
            cfg = compose(config_name="train", overrides=["experiment=reference"])
        assert cfg.trainer.max_steps > 0
    finally:
        sys.path.remove(str(project / "src"))
        for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[name]


def expect_hook_failure(out: Path, capfd, **context) -> None:
    capfd.readouterr()
    with pytest.raises(FailedHookException):
        bake(out, **context)
    ours = [line for line in capfd.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(ours) == 1, ours
    assert list(out.iterdir()) == [], "a partial project was left behind"


@FUZZ
@given(title=free_text, authors=free_text, name=free_text)
def test_any_text_bakes_valid_files_or_fails_cleanly(title, authors, name, capfd):
    assume(not raw_jinja(title + authors + name))  # must be escaped; documented
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        context = {"paper_title": title, "paper_authors": authors, "author_name": name}
        if not rendered(title):
            expect_hook_failure(out, capfd, **context)
            return
        capfd.readouterr()
        try:
            project = bake(out, **context)
        except FailedHookException:
            # Only the names derived from the title may be unusable (a title
            # "Random" gives the package name "random", shadowing the stdlib).
            ours = [line for line in capfd.readouterr().err.splitlines() if line.startswith("error: ")]
            assert len(ours) == 1 and ours[0].startswith(("error: package_name", "error: paper_slug"))
            assert list(out.iterdir()) == [], "a partial project was left behind"
            return
        check_project(project, title)


names = st.text(alphabet="abcXYZ019_-.é ", min_size=0, max_size=70)


@FUZZ
@given(slug=names, package=names)
@example(slug=".", package="")  # found by hypothesis: names the output directory itself
def test_any_slug_and_package_name_bake_or_fail_with_one_line(slug, package, capfd):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        if slug_ok(slug) and package_ok(package):
            check_project(bake(out, paper_slug=slug, package_name=package), "Attention Is All You Need")
        elif slug not in ("", ".", ".."):
            expect_hook_failure(out, capfd, paper_slug=slug, package_name=package)
        else:  # no new directory ("", ".", ".."): cookiecutter itself refuses, before any hook
            with pytest.raises(Exception):  # noqa: B017 (its message varies by case)
                bake(out, paper_slug=slug, package_name=package)
            assert list(out.iterdir()) == []
