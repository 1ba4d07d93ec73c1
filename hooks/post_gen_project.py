"""Finish the baked project (standard library only; safe to run more than once).

The template keeps what differs between paper types in one place per type:
``_paper_types/<type>/`` mirrors the project tree (data.py, model.py, loss.py, their
configs and pitfall tests); ``_paper_types/_shared/`` holds code that several types
include into their own files when rendered. Here the chosen type's files are moved
into place and every template-internal folder (a top-level name starting with
``_``) is removed, so the baked project holds only its own type's code.

Re-running it (cruft re-runs hooks) finds nothing left to move and changes nothing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

PAPER_TYPE = "{{ cookiecutter.paper_type }}"  # a choice: one of a fixed list of names
PACKAGE = "{{ cookiecutter.package_name }}"  # checked by pre_gen_project.py
PROJECT = Path.cwd()  # cookiecutter runs hooks inside the new project
FRAGMENTS = "_fragments"  # per-type text included into shared files, not copied


def overlay(source: Path, target: Path) -> None:
    """Move every file under ``source`` to the same relative path under ``target``."""
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if not path.is_file() or relative.parts[0] == FRAGMENTS:
            continue
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        # A per-type file replaces a shared one of the same path: only where the
        # template's tests list it as intended (REPLACED_SHARED_FILES), and a file
        # left by an earlier bake into the same directory (--overwrite-if-exists).
        os.replace(path, destination)


def main() -> None:
    type_dir = PROJECT / "_paper_types" / PAPER_TYPE
    if type_dir.is_dir():
        overlay(type_dir, PROJECT)
    for internal in PROJECT.glob("_*"):
        if internal.is_dir():
            shutil.rmtree(internal)

    print(next_steps())


def next_steps() -> str:
    """What to run next: the README's own set-up block (one source, so the two never
    disagree), then the bundled example."""
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    set_up = readme.split("## Set up", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [f"cd {PROJECT.name}", *set_up.strip().splitlines()]
    lines += [
        f"python -m {PACKAGE}.train experiment=reference  # the bundled example",
        f"python -m {PACKAGE}.eval ckpt_path=latest",
    ]
    commands = "\n".join(f"  {line}" for line in lines)
    return (
        f"\nBaked {PROJECT.name} ({PAPER_TYPE}). Next:\n\n{commands}\n\n"
        "Then fill in PAPER.md (phase 0) and follow README.md phase by phase.\n"
    )


if __name__ == "__main__":
    main()
