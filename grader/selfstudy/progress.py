"""Local self-study progress: attempts, passes and hints per exercise, and quiz answers.

Everything lives in one JSON file, ``$GRADER_HOME/progress.json`` (default
``~/.attention-grader``).  Nothing here ever feeds a grade: it is the learner's own record.
:func:`record` is called by ``grader.checks.check`` after every in-notebook check.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

TIERS = ("basic", "intermediate", "advanced", "quiz")


def home() -> Path:
    """The directory holding progress (``$GRADER_HOME`` or ``~/.attention-grader``)."""
    return Path(os.environ.get("GRADER_HOME") or Path.home() / ".attention-grader")


def _file() -> Path:
    return home() / "progress.json"


def load() -> dict[str, Any]:
    """The whole record: ``{"exercises": {spec_id: {...}}, "quiz": {question_id: {...}}}``.
    A missing or unreadable file gives an empty record."""
    try:
        data = json.loads(_file().read_text())
    except (FileNotFoundError, ValueError):
        data = {}
    data.setdefault("exercises", {})
    data.setdefault("quiz", {})
    return data


def save(data: dict[str, Any]) -> None:
    """Write the record atomically (a crash never leaves half a file)."""
    path = _file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".progress-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _exercise(data: dict, spec_id: str) -> dict:
    return data["exercises"].setdefault(
        spec_id, {"attempts": 0, "passed": False, "hints": 0, "last": None, "updated": None})


def record(result) -> None:
    """Count one check of an exercise (a ``grader.checks.CheckResult``).

    "not attempted" results are remembered as the last status without counting an attempt;
    ``passed`` stays True once the exercise has passed.
    """
    data = load()
    e = _exercise(data, result.spec_id)
    if result.status != "not attempted":
        e["attempts"] += 1
    e["passed"] = bool(e["passed"] or result.status == "passed")
    e["last"] = result.status
    e["updated"] = time.time()
    save(data)


def hints_used(spec_id: str) -> int:
    """How many hints of ``spec_id`` the learner has seen."""
    return int(load()["exercises"].get(spec_id, {}).get("hints", 0))


def use_hint(spec_id: str, available: int) -> int:
    """Advance the hint counter of ``spec_id`` (capped at ``available``); return the 0-based
    index of the hint to show."""
    data = load()
    e = _exercise(data, spec_id)
    shown = int(e["hints"])
    e["hints"] = min(shown + 1, available)
    e["updated"] = time.time()
    save(data)
    return min(shown, available - 1)


def record_answer(question_id: str, right: bool, score: float | None = None) -> None:
    """Count one quiz answer; ``score`` (0..1) is kept for self-assessed open questions."""
    data = load()
    q = data["quiz"].setdefault(question_id, {"asked": 0, "right": 0, "last_right": None})
    q["asked"] += 1
    q["right"] += int(right)
    q["last_right"] = bool(right)
    q["last_score"] = float(score if score is not None else right)
    q["updated"] = time.time()
    save(data)


def notebook_of(spec_id: str) -> tuple[str, str]:
    """(assignment, notebook id) of the test cell that checks ``spec_id``, from the source
    notebooks listed in course.yml; ("<assignment>", "?") when no notebook checks it."""
    return _spec_notebooks().get(spec_id, (spec_id.split(".", 1)[0], "?"))


_SPEC_NB: dict[str, tuple[str, str]] | None = None


def _spec_notebooks() -> dict[str, tuple[str, str]]:
    global _SPEC_NB
    if _SPEC_NB is None:
        import nbformat

        from grader.course import ROOT, load_course
        from grader.grading.checkcalls import parse_check_calls

        out: dict[str, tuple[str, str]] = {}
        try:
            course = load_course()
            wanted = [(a.id, t) for a in course.assignments for t in ("basic", "intermediate", "advanced", "quiz")]
        except Exception:
            wanted = []
        for a, t in wanted:
            path = ROOT / "solutions" / a / f"{t}.ipynb"
            if not path.exists():
                path = ROOT / "exercises" / a / f"{t}.ipynb"
            if not path.exists():
                continue
            for cell in nbformat.read(path, as_version=4).cells:
                if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
                    try:
                        for c in parse_check_calls(cell.source):
                            out.setdefault(c.spec_id, (a, t))
                    except ValueError:
                        pass
        _SPEC_NB = out
    return _SPEC_NB


def table_rows(data: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per (topic, tier) with exercises passed/tried, attempts and hints, plus one
    row per topic for the quiz bank answers; sorted in course order."""
    data = load() if data is None else data
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for sid, e in data["exercises"].items():
        topic, tier = notebook_of(sid)
        r = rows.setdefault((topic, tier), {"topic": topic, "tier": tier, "exercises": 0, "passed": 0,
                                            "attempts": 0, "hints": 0})
        r["exercises"] += 1
        r["passed"] += int(bool(e.get("passed")))
        r["attempts"] += int(e.get("attempts", 0))
        r["hints"] += int(e.get("hints", 0))
    for qid, q in data["quiz"].items():
        topic = qid.split(".", 1)[0]
        r = rows.setdefault((topic, "quiz bank"), {"topic": topic, "tier": "quiz bank", "exercises": 0,
                                                   "passed": 0, "attempts": 0, "hints": 0})
        r["exercises"] += 1
        r["passed"] += int(bool(q.get("last_right")))
        r["attempts"] += int(q.get("asked", 0))
    try:
        from grader.course import load_course
        order = {a.id: i for i, a in enumerate(load_course().assignments)}
    except Exception:
        order = {}
    tier_order = {t: i for i, t in enumerate([*TIERS, "quiz bank", "?"])}
    return sorted(rows.values(), key=lambda r: (order.get(r["topic"], 99), r["topic"],
                                                tier_order.get(r["tier"], 99)))
