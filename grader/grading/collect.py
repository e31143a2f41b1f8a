"""Stage 1 of grading: find the submissions and refuse the ones nbgrader cannot grade.

Submissions follow nbgrader's layout ``SUBMITTED/<student>/<assignment>/<tier>.ipynb``.
Each file is checked on its own, so one bad file costs only itself: not valid JSON, not a
notebook, an unknown assignment or notebook, or a notebook that belongs to another
assignment (its grade ids are another notebook's).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import nbformat

from ..course import ROOT, Course


@dataclass(frozen=True)
class Submission:
    student: str
    assignment: str
    notebook: str
    path: Path


@dataclass(frozen=True)
class Problem:
    """A submission that could not be graded, and why (shown to the instructor)."""

    student: str
    assignment: str
    notebook: str
    path: Path
    reason: str


@lru_cache(maxsize=None)
def _grade_ids(path: Path) -> frozenset[str]:
    nb = nbformat.read(path, as_version=4)
    return frozenset(c.metadata["nbgrader"]["grade_id"] for c in nb.cells
                     if c.get("metadata", {}).get("nbgrader", {}).get("grade_id"))


def _owner_of(ids: set[str], course: Course, root: Path) -> tuple[str | None, int]:
    """The source notebook sharing the most grade ids with ``ids``, and how many it shares."""
    best, best_n = None, 0
    for a, t in course.notebooks():
        src = root / "solutions" / a / f"{t}.ipynb"
        if src.exists():
            n = len(ids & _grade_ids(src))
            if n > best_n:
                best, best_n = f"{a}/{t}", n
    return best, best_n


def check_submission(path: Path, student: str, assignment: str, notebook: str, course: Course,
                     root: Path = ROOT) -> str | None:
    """The reason ``path`` cannot be graded, or None when it can."""
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return "not a notebook: the file is not UTF-8 text"
    try:
        json.loads(raw)
    except json.JSONDecodeError as e:
        return f"not a notebook: invalid JSON at line {e.lineno}, column {e.colno} ({e.msg})"
    try:
        nb = nbformat.reads(raw, as_version=4)
        nbformat.validate(nb)
    except Exception as e:
        return f"not a valid notebook: {str(e).splitlines()[0][:200]}"
    ids = {c.metadata["nbgrader"]["grade_id"] for c in nb.cells
           if c.get("metadata", {}).get("nbgrader", {}).get("grade_id")}
    expected = _grade_ids(root / "solutions" / assignment / f"{notebook}.ipynb")
    if not ids:
        return "not this course's notebook: it has none of the graded cells (was it re-created from scratch?)"
    owner, shared = _owner_of(ids, course, root)
    if owner != f"{assignment}/{notebook}" and shared > len(ids & expected):
        where = f"it is {owner}" if owner else "its cells belong to no notebook of this course"
        return f"foreign notebook: submitted as {assignment}/{notebook}, but {where}"
    return None


def collect(submitted: Path, course: Course, root: Path = ROOT) -> tuple[list[Submission], list[Problem]]:
    """All gradable submissions under ``submitted`` and the problems with the rest."""
    subs, problems = [], []
    known = {a.id: a for a in course.assignments}
    if not submitted.is_dir():
        raise FileNotFoundError(f"{submitted}: no such directory of submissions")
    for sdir in sorted(p for p in submitted.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for adir in sorted(p for p in sdir.iterdir() if not p.name.startswith(".")):
            if adir.name not in known:
                problems.append(Problem(sdir.name, adir.name, "", adir,
                                        f"unknown assignment {adir.name!r}; the course has {', '.join(known)}"))
                continue
            if not adir.is_dir():
                problems.append(Problem(sdir.name, adir.name, "", adir, "expected a directory of notebooks"))
                continue
            for nb_path in sorted(adir.glob("*.ipynb")):
                nb_id = nb_path.stem
                if nb_id not in known[adir.name].notebooks:
                    problems.append(Problem(sdir.name, adir.name, nb_id, nb_path,
                                            f"unknown notebook {nb_id!r} for {adir.name}; expected "
                                            f"{', '.join(known[adir.name].notebooks)}"))
                    continue
                why = check_submission(nb_path, sdir.name, adir.name, nb_id, course, root)
                if why:
                    problems.append(Problem(sdir.name, adir.name, nb_id, nb_path, why))
                else:
                    subs.append(Submission(sdir.name, adir.name, nb_id, nb_path))
    return subs, problems
