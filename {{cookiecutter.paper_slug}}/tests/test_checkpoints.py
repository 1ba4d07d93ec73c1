"""CHECKPOINTS.md progress: the counter sees answers, and (opt-in) every question
is answered. The opt-in test is marked ``checkpoints``: ``pytest -m checkpoints``."""

from __future__ import annotations

from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.checkpoints import (
    main,
    progress,
)

CHECKPOINTS = Path(__file__).resolve().parent.parent / "CHECKPOINTS.md"
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
