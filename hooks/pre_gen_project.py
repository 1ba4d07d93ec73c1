"""Check the answers before any file is written (standard library only).

Cookiecutter renders this file with Jinja before running it. Answers are pasted in
as JSON string literals (``tojson`` escapes quotes, backslashes and control
characters), never as raw text, so no answer can break or inject into this code.

On a bad answer: print one line saying what is wrong and what would be accepted,
exit 1. Cookiecutter then removes the project directory it had created.
"""

from __future__ import annotations

import datetime
import json
import keyword
import re
import sys

# Triple single quotes on purpose: tojson escapes ' (as \u0027) but not ", so a
# JSON string can never close an r'''...''' literal early. Keep the formatter off.
# fmt: off
ANSWERS = {
    "paper_title": json.loads(r'''{{ cookiecutter.paper_title | tojson }}'''),
    "paper_authors": json.loads(r'''{{ cookiecutter.paper_authors | tojson }}'''),
    "paper_year": json.loads(r'''{{ cookiecutter.paper_year | tojson }}'''),
    "paper_arxiv": json.loads(r'''{{ cookiecutter.paper_arxiv | tojson }}'''),
    "paper_slug": json.loads(r'''{{ cookiecutter.paper_slug | tojson }}'''),
    "package_name": json.loads(r'''{{ cookiecutter.package_name | tojson }}'''),
    "author_name": json.loads(r'''{{ cookiecutter.author_name | tojson }}'''),
    "author_email": json.loads(r'''{{ cookiecutter.author_email | tojson }}'''),
}
# fmt: on

MAX_SLUG = 64  # well under file-name limits, and readable in a shell prompt
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
PACKAGE = re.compile(r"[a-z_][a-z0-9_]*")
# Names a package must not shadow: what the project imports or runs besides stdlib.
TAKEN = {"torch", "hydra", "omegaconf", "numpy", "tqdm", "pytest", "test", "tests", "src"}
ARXIV_NEW = re.compile(r"(\d{2})(\d{2})\.(\d{4,5})(v\d+)?")  # 0704.0001, 2106.09685v2
ARXIV_OLD = re.compile(r"[a-z-]+(\.[A-Z]{2})?/\d{7}(v\d+)?")  # hep-th/9901001, cs.LG/0101001
URL = re.compile(r"https?://[^\s/]+\.[^\s/]+(/\S*)?", re.IGNORECASE)
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def is_arxiv_id(ref: str) -> bool:
    new = ARXIV_NEW.fullmatch(ref)
    if new:
        year, month, number = int(new[1]), int(new[2]), new[3]
        # Since January 2015 (1501) the number after the dot has five digits.
        return 1 <= month <= 12 and len(number) == (5 if (year, month) >= (15, 1) else 4)
    return bool(ARXIV_OLD.fullmatch(ref))


def problems(a: dict[str, str]):
    """Yield one message per bad answer."""
    for key in ("paper_title", "paper_authors", "author_name", "author_email"):
        if CONTROL.search(a[key]):
            yield f"{key} contains a control character (newline, tab, ...): use one plain line"
    if not a["paper_title"].strip():
        yield "paper_title is empty: give the paper's title"

    slug = a["paper_slug"]
    if not SLUG.fullmatch(slug) or len(slug) > MAX_SLUG:
        yield (
            f"paper_slug {slug!r} is not valid: use lowercase letters, digits and single "
            f"hyphens, at most {MAX_SLUG} characters (e.g. attention-is-all-you-need)"
        )

    pkg = a["package_name"]
    if not PACKAGE.fullmatch(pkg) or len(pkg) > MAX_SLUG:
        yield (
            f"package_name {pkg!r} is not a valid import name: use lowercase letters, "
            f"digits and underscores, not starting with a digit (e.g. attention_is_all)"
        )
    elif keyword.iskeyword(pkg) or keyword.issoftkeyword(pkg):
        yield f"package_name {pkg!r} is a Python keyword: pick another name"
    elif pkg in sys.stdlib_module_names or pkg in TAKEN:
        yield (
            f"package_name {pkg!r} would shadow the module {pkg!r} that Python or this "
            "project imports: pick another name (e.g. add a prefix)"
        )

    year = a["paper_year"].strip()
    this_year = datetime.date.today().year
    if not (year.isdigit() and 1900 <= int(year) <= this_year + 1):
        yield f"paper_year {year!r} is not a year: give four digits, 1900 to {this_year + 1}"

    ref = a["paper_arxiv"].strip()
    if not (is_arxiv_id(ref) or URL.fullmatch(ref)):
        yield (
            f"paper_arxiv {ref!r} is neither an arXiv id (e.g. 1706.03762) nor an "
            "http(s) URL (e.g. https://openreview.net/forum?id=...)"
        )

    if not EMAIL.fullmatch(a["author_email"].strip()):
        yield f"author_email {a['author_email']!r} is not an email address (name@host.tld)"


def main() -> int:
    # Only the first problem: a later one often follows from it (a bad slug makes
    # the package name derived from it bad too).
    message = next(problems(ANSWERS), None)
    if message is None:
        return 0
    print(f"error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
