"""Bad answers stop the bake in the pre-generation hook with one clear line each,
and leave no directory behind. These run the real `cookiecutter` command line."""

from __future__ import annotations

import pytest
from conftest import TEMPLATE, cookiecutter_cli

BAD = [
    ("paper_slug", "Bad Slug", "paper_slug 'Bad Slug' is not valid"),
    ("paper_slug", "double--hyphen", "paper_slug 'double--hyphen' is not valid"),
    ("paper_slug", "x" * 80, "at most 64 characters"),
    ("package_name", "my-package", "is not a valid import name"),
    ("package_name", "3d_model", "is not a valid import name"),
    ("package_name", "class", "is a Python keyword"),
    ("package_name", "torch", "would shadow the module 'torch'"),
    ("package_name", "json", "would shadow the module 'json'"),
    ("package_name", "test", "would shadow the module 'test'"),
    ("paper_arxiv", "not an id", "neither an arXiv id"),
    ("paper_arxiv", "1706.0376", "neither an arXiv id"),
    ("paper_year", "17", "is not a year"),
    ("author_email", "nobody", "is not an email address"),
    ("paper_title", "two\nlines", "paper_title contains a control character"),
]


@pytest.mark.parametrize("key, value, message", BAD, ids=[f"{k}={v[:12]!r}" for k, v, _ in BAD])
def test_bad_answer_fails_with_one_line_and_leaves_nothing(tmp_path, key, value, message):
    out = tmp_path / "out"
    out.mkdir()
    result = cookiecutter_cli(str(TEMPLATE), "-o", str(out), f"{key}={value}", cwd=tmp_path)
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(ours) == 1, result.stderr
    assert message in ours[0]
    assert list(out.iterdir()) == [], "a partial project was left behind"


@pytest.mark.parametrize(
    "arxiv", ["1706.03762", "2106.09685v2", "hep-th/9901001", "https://openreview.net/forum?id=abc"]
)
def test_accepted_paper_references(tmp_path, arxiv):
    result = cookiecutter_cli(str(TEMPLATE), "-o", str(tmp_path), f"paper_arxiv={arxiv}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    readme = (tmp_path / "attention-is-all-you-need" / "README.md").read_text(encoding="utf-8")
    url = arxiv if arxiv.startswith("http") else f"https://arxiv.org/abs/{arxiv}"
    assert f"<{url}>" in readme
