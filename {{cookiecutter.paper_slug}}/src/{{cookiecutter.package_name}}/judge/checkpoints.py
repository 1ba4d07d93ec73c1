"""Progress through CHECKPOINTS.md: how many questions per phase have an answer.

    python -m {{ cookiecutter.package_name }}.judge.checkpoints              # ./CHECKPOINTS.md
    python -m {{ cookiecutter.package_name }}.judge.checkpoints --strict     # exit 1 while any is open

A question counts as answered when its collapsible answer slot holds text other
than the placeholder comment. ``pytest -m checkpoints`` runs the opt-in test that
fails while any question is open (for a "done" gate before you report numbers).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

PHASE = re.compile(r"^## (Phase \d+: .*)$", re.MULTILINE)
ANSWER = re.compile(r"<details><summary>Answer</summary>(.*?)</details>", re.DOTALL)
COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def progress(text: str) -> list[tuple[str, int, int]]:
    """(phase title, answered, questions) for each phase, in document order."""
    headings = list(PHASE.finditer(text))
    result = []
    for heading, following in zip(headings, [*headings[1:], None], strict=True):
        body = text[heading.end() : following.start() if following else len(text)]
        slots = ANSWER.findall(body)
        answered = sum(1 for slot in slots if COMMENT.sub("", slot).strip())
        result.append((heading.group(1).strip(), answered, len(slots)))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=Path("CHECKPOINTS.md"))
    parser.add_argument("--strict", action="store_true", help="exit 1 while a question is open")
    args = parser.parse_args(argv)
    if not args.path.is_file():
        print(
            f"error: {args.path} not found; run from the project root or pass its path",
            file=sys.stderr,
        )
        return 2
    phases = progress(args.path.read_text(encoding="utf-8"))
    print("| Phase | Answered |\n|---|---|")
    for title, answered, total in phases:
        print(f"| {title} | {answered} / {total}{' done' if answered == total else ''} |")
    open_questions = sum(total - answered for _, answered, total in phases)
    print(f"\n{open_questions} question(s) open.")
    return 1 if args.strict and open_questions else 0


if __name__ == "__main__":
    sys.exit(main())
