"""One grading task: one student's notebooks of one assignment, graded anywhere.

A task is plain data in (the submitted notebooks as bytes, the run seed, a template
gradebook) and plain data out (scores, the autograded notebooks, feedback pages, trusted
results).  It runs nbgrader's Autograde, with :class:`TrustedExecute`, against a *private*
copy of the template gradebook, so tasks can run in parallel processes or on Dask workers
without ever sharing a database.  The coordinator (:mod:`grader.grading.pipeline`) is the
one place that writes to the real gradebook.
"""
from __future__ import annotations

import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from ..course import ROOT, load_course


@dataclass
class GradeTask:
    student: str
    assignment: str
    notebooks: dict[str, bytes]  # notebook id -> submitted .ipynb bytes
    run_seed: str
    template_db: bytes  # a gradebook that knows the assignment (SQLite file bytes)
    feedback: bool = True
    root: str = str(ROOT)


@dataclass
class GradeOutcome:
    student: str
    assignment: str
    ok: bool
    error: str = ""
    # notebook id -> grade_id -> {"auto_score", "max_score", "needs_manual_grade"}
    grades: dict[str, dict[str, dict]] = field(default_factory=dict)
    comments: dict[str, dict[str, str | None]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)  # path relative to OUT -> bytes
    seconds: float = 0.0


_POOL = None


def _warm_pool():
    """One warm sandbox worker pool per grading process, made on first use."""
    global _POOL
    if _POOL is None:
        from .pool import WarmPool

        _POOL = WarmPool(size=1)
    return _POOL


def warm_up() -> None:
    """Initialiser for grading processes: import nbgrader and start a sandbox worker."""
    import nbgrader.apps  # noqa: F401  (warm-up: pay the import once per process)

    _warm_pool()


def grade_task(task: GradeTask) -> GradeOutcome:
    """Grade one (student, assignment); never raises for a bad submission."""
    import time

    from nbgrader.api import Gradebook

    from ..nbgrader_course import nbgrader_api
    from .pipeline import autograde_config
    from .trusted import TrustedExecute

    t0 = time.perf_counter()
    out = GradeOutcome(task.student, task.assignment, ok=False)
    root = Path(task.root)
    course = load_course(root / "course.yml")
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        tmp = Path(tmp)
        db = tmp / "gradebook.db"
        db.write_bytes(task.template_db)
        for nb_id, data in task.notebooks.items():
            p = tmp / "submitted" / task.student / task.assignment / f"{nb_id}.ipynb"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        db_url = f"sqlite:///{db}"
        api = nbgrader_api(autograde_config(course, tmp, db_url, task.run_seed, root))
        TrustedExecute.worker_factory = staticmethod(_warm_pool().get)
        try:
            res = api.autograde(task.assignment, task.student, force=True, create=True)
            if not res["success"]:
                out.error = _last_error(res)
                return out
            if task.feedback:
                api.generate_feedback(task.assignment, task.student, force=True)
            with Gradebook(db_url, course.id) as gb:
                sub = gb.find_submission(task.assignment, task.student)
                for nb in sub.notebooks:
                    out.grades[nb.name] = {g.name: {"auto_score": g.auto_score, "max_score": g.max_score,
                                                    "needs_manual_grade": g.needs_manual_grade}
                                           for g in nb.grades}
                    out.comments[nb.name] = {c.name: c.auto_comment for c in nb.comments}
            for sub_dir in ("autograded", "feedback", "results"):
                base = tmp / sub_dir
                if base.exists():
                    for f in base.rglob("*"):
                        if f.is_file():
                            out.files[str(f.relative_to(tmp))] = f.read_bytes()
            out.ok = True
        except Exception:
            out.error = traceback.format_exc(limit=3)[-600:]
    out.seconds = time.perf_counter() - t0
    return out


def _last_error(res: dict) -> str:
    log = (res.get("error") or res.get("log") or "").strip().splitlines()
    errs = [line for line in log if "ERROR" in line or "Error" in line]
    return (errs[-1] if errs else (log[-1] if log else "nbgrader autograde failed"))[:300]


def write_outcome(outcome: GradeOutcome, gb, out_dir: Path) -> None:
    """Merge one task's outcome into the real gradebook and OUT.  The coordinator calls this,
    and only the coordinator: it is the single writer.  The trusted results file is written
    last, marking the (student, assignment) as done for resumed runs."""
    gb.update_or_create_student(outcome.student)
    sub = gb.update_or_create_submission(outcome.assignment, outcome.student)
    for nb in sub.notebooks:
        for g in nb.grades:
            new = outcome.grades.get(nb.name, {}).get(g.name)
            if new is None:
                g.auto_score, g.needs_manual_grade = 0, False  # a notebook that was not submitted
            else:
                g.auto_score = new["auto_score"]
                g.needs_manual_grade = bool(new["needs_manual_grade"]) or g.manual_score is not None
        for c in nb.comments:
            c.auto_comment = outcome.comments.get(nb.name, {}).get(c.name)
    gb.db.commit()
    results = sorted((p for p in outcome.files if p.startswith("results/")))
    for rel in [p for p in outcome.files if not p.startswith("results/")] + results:
        dest = out_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(dest.suffix + ".part")
        tmp.write_bytes(outcome.files[rel])
        tmp.replace(dest)
