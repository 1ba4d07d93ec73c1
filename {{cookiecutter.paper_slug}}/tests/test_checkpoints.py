"""CHECKPOINTS.md progress: the counter sees answers, and (opt-in) every question
is answered. The opt-in test is marked ``checkpoints``: ``pytest -m checkpoints``.
And the docs stay honest: every test file, test and ``pytest -k`` selection that
CHECKPOINTS.md or README.md names exists in tests/."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.judge.checkpoints import (
    main,
    progress,
)

TESTS = Path(__file__).resolve().parent
CHECKPOINTS = TESTS.parent / "CHECKPOINTS.md"
README = TESTS.parent / "README.md"
SLOT = "<details><summary>Answer</summary>\n\n<!-- Write your answer here. -->\n\n</details>"


def test_every_phase_of_the_method_has_questions():
    phases = progress(CHECKPOINTS.read_text(encoding="utf-8"))
    assert [title.split(":")[0] for title, _, _ in phases] == [f"Phase {n}" for n in range(7)]
    assert all(total > 0 for _, _, total in phases)


def test_an_answer_written_in_a_slot_is_counted(tmp_path, capsys):
    text = CHECKPOINTS.read_text(encoding="utf-8")
    before = sum(answered for _, answered, _ in progress(text))
    answered = text.replace(SLOT, SLOT.replace("<!-- Write your answer here. -->", "Because."), 1)
    assert sum(a for _, a, _ in progress(answered)) == before + 1
    path = tmp_path / "CHECKPOINTS.md"
    path.write_text(
        answered.replace(SLOT, SLOT.replace("<!-- Write your answer here. -->", "Yes."))
    )
    assert main([str(path), "--strict"]) == 0
    assert "0 question(s) open." in capsys.readouterr().out


@pytest.mark.checkpoints
def test_every_checkpoint_question_is_answered():
    open_phases = [
        f"{title}: {total - answered} open"
        for title, answered, total in progress(CHECKPOINTS.read_text(encoding="utf-8"))
        if answered < total
    ]
    assert not open_phases, "unanswered questions in CHECKPOINTS.md: " + "; ".join(open_phases)


@functools.cache
def defined_tests() -> dict[str, set[str]]:
    """The test functions of each ``tests/test_*.py`` file, read without importing it."""
    found = {}
    for path in TESTS.glob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found[path.name] = {
            node.name
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.name.startswith("test")
        }
    return found


def k_selects(expression: str, name: str) -> bool:
    """Whether ``pytest -k expression`` keeps the test ``name``: and / or / not and
    parentheses over case-insensitive substrings. Stricter than pytest, which also
    matches module and directory names: a selection must name tests."""
    tokens = re.findall(r"\(|\)|[^\s()]+", expression)
    operators = ("(", ")", "and", "or", "not")
    words = [t if t in operators else str(t.lower() in name.lower()) for t in tokens]
    return eval(" ".join(words), {"__builtins__": {}})  # only True/False/and/or/not/()


PYTEST = re.compile(r"`pytest\b([^`]*)`")
K_OPTION = re.compile(r"""-k\s+(?:"([^"]*)"|'([^']*)'|(\S+))""")
TEST_FILE = re.compile(r"\b(test_\w+\.py)(?:::(\w+))?")
# A test's name on its own: not a file, not part of a dotted config key or a path.
TEST_NAME = re.compile(r"(?<![\w./=-])(test_\w+)\b(?!\.py|::)")


def dangling_references(text: str, tests: dict[str, set[str]]) -> list[str]:
    problems = []
    every_test = set().union(*tests.values())
    for file, name in TEST_FILE.findall(text):
        if file not in tests:
            problems.append(f"{file}: no such file in tests/")
        elif name and name not in tests[file]:
            problems.append(f"{file}::{name}: no such test")
    for code in re.findall(r"`([^`]+)`", text):
        problems += [
            f"{name}: no such test in tests/"
            for name in TEST_NAME.findall(K_OPTION.sub("", TEST_FILE.sub("", code)))
            if name not in every_test
        ]
    for args in PYTEST.findall(text):
        files = [f for f, _ in TEST_FILE.findall(args)] or list(tests)
        for match in K_OPTION.finditer(args):
            expression = next(group for group in match.groups() if group is not None)
            names = [n for f in files for n in tests.get(f, ())]
            if not any(k_selects(expression, n) for n in names):
                problems.append(f"`pytest{args}` selects no test")
    return list(dict.fromkeys(problems))  # each once, in the order found


@pytest.mark.parametrize("doc", [CHECKPOINTS, README], ids=lambda path: path.name)
def test_every_test_the_docs_name_exists(doc):
    # A question that points at a deleted or renamed test sends its reader nowhere,
    # and nothing else would notice: replacing the example's pitfall file left five
    # questions pointing at it.
    problems = dangling_references(doc.read_text(encoding="utf-8"), defined_tests())
    assert not problems, f"{doc.name} names tests that do not exist: " + "; ".join(problems)
