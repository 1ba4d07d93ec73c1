"""Any title or name a user types bakes a valid project and is shown verbatim.

User text reaches TOML (pyproject), Markdown (README, PAPER, CHECKPOINTS) and the
hooks (Python). Each target gets its own escaping; none gets raw interpolation.
"""

from __future__ import annotations

import ast
import tomllib

import pytest
import yaml
from conftest import bake_ok
from markdown_it import MarkdownIt

HOSTILE = [
    "He said \"hi\" & 'bye'",
    r"Back\slash \n \t \\ and C:\path\to",
    "# Not a heading: *bold* _it_ [link](http://x.org) <b>tag</b> | pipe |",
    "`code` and $x^2$ and ~~strike~~ and &amp; and \\*",
    "Key: value - [a, b] {c: d} --- ... !tag &anchor *alias",
    "\"\"\"triple\"\"\" and '''single''' and #comment",
    "Über Ñandú: 学习 — naïve ∑ (Grüße) 🚀 Rocket 🤖 Science 👩🏽‍🔬",
    "  Padded with spaces  ",
    "A " + "very long title " * 25,
    "{{ '{{' }} literal braces {{ '}}' }} and {{ '{%' }} tags {{ '%}' }}",
]
# What the user gets from each: cookiecutter renders answers as Jinja, so braces
# come from the escaped form; surrounding spaces are trimmed.
SHOWN = {
    HOSTILE[-1]: "{{ literal braces }} and {% tags %}",
    "  Padded with spaces  ": "Padded with spaces",
}

markdown = MarkdownIt("commonmark").enable("table")


def inline_text(inline_token) -> str:
    """The text a reader sees; fails if any part was read as markup."""
    kinds = {child.type for child in inline_token.children}
    assert kinds <= {"text"}, f"title was rendered as markup: {kinds}"
    return "".join(child.content for child in inline_token.children)


def first_heading(md: str) -> str:
    tokens = markdown.parse(md)
    index = next(i for i, t in enumerate(tokens) if t.type == "heading_open")
    return inline_text(tokens[index + 1])


def table_cell(md: str, row_label: str) -> str:
    tokens = markdown.parse(md)
    for i, token in enumerate(tokens):
        if token.type == "inline" and token.content == row_label and tokens[i - 1].type == "td_open":
            return inline_text(tokens[i + 3])  # td_close, td_open, inline
    raise AssertionError(f"no table row {row_label!r}")


@pytest.mark.parametrize("title", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_title_bakes_valid_files_and_shows_verbatim(cookies, title):
    authors = 'O\'Brien, "Quote" Jr., Back\\slash, 李雷 & Ωmega <et al.>'
    name = 'Renée "The Coder" O\'Neil \\ 🚀'
    project = bake_ok(cookies, paper_title=title, paper_authors=authors, author_name=name)
    shown = SHOWN.get(title, title.strip())

    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["description"] == f'Reproduction of "{shown}"'
    assert meta["project"]["authors"][0]["name"] == name

    readme = (project / "README.md").read_text(encoding="utf-8")
    assert first_heading(readme) == f"Reproducing: {shown}"
    paper = (project / "PAPER.md").read_text(encoding="utf-8")
    assert first_heading(paper) == f"Paper analysis: {shown}"
    assert table_cell(paper, "Title") == shown
    assert table_cell(paper, "Authors") == authors

    for path in project.rglob("*.py"):
        ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for path in project.rglob("*.yaml"):
        yaml.safe_load(path.read_text(encoding="utf-8"))
