"""Every bundled example's claims, re-checked: the command (tests/bundled_claims.py)
bakes each paper type, runs its reference over three seeds and compares. Marked
`claims` (not in the default run: ~20 minutes on 2 cores); `pytest -m claims -n 0`
runs it, and the template's CI workflow runs it weekly and on demand."""

from __future__ import annotations

import pytest
from bundled_claims import Row, exit_status, main, table


def row(verdict: str) -> Row:
    return Row("vision", "test/acc >= 0.95", "0.99 ± 0.003 (n=3)", "[0.98, 1]", verdict, 14.0)


@pytest.mark.parametrize(
    "verdicts, status",
    [
        (["holds", "matches", "not checked"], 0),
        (["holds", "OFF"], 1),
        (["holds", "inconclusive: ~5 seeds would settle it"], 1),
        (["FAILS: the sweep crashed"], 1),
        (["missing"], 1),
    ],
)
def test_the_command_fails_on_any_row_that_does_not_hold(verdicts, status):
    rows = [row(v) for v in verdicts]
    assert exit_status(rows) == status
    assert table(rows).count("\n| vision |") == len(rows)


@pytest.mark.claims
def test_every_bundled_claim_holds_over_three_seeds(capsys):
    status = main(["--jobs", "2"])
    printed = capsys.readouterr().out
    with capsys.disabled():
        print("\n" + printed)
    assert status == 0, printed
