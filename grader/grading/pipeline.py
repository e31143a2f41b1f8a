"""``grader autograde``: the grading pipeline, composed in one place.

    collect   -> find submissions; refuse corrupt, unknown and foreign files one by one
    stage     -> copy the gradable ones into nbgrader's submitted layout under OUT
    gradebook -> make sure the gradebook knows every assignment (nbgrader generate_assignment)
    autograde -> nbgrader's Autograde, with its Execute stage replaced by TrustedExecute
    feedback  -> nbgrader's generate_feedback, hidden tests cleared
    report    -> OUT/grades.csv and the summary table

Every stage but ``TrustedExecute`` is nbgrader's own or a thin wrapper around it.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..course import ROOT, Course, load_course
from ..nbgrader_course import nbgrader_api, nbgrader_config
from .collect import Problem, Submission, collect, stage
from .sandbox import sandbox_status


@dataclass
class RunReport:
    out: Path
    db_url: str
    run_seed: str
    sandbox: str
    graded: list[tuple[str, str]] = field(default_factory=list)  # (student, assignment)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # already graded
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # nbgrader errors
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0
    rows: list[dict] = field(default_factory=list)


def autograde_config(course: Course, out: Path, db_url: str, run_seed: str, root: Path = ROOT):
    """nbgrader config for trusted autograding into ``out``."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearHiddenTests,
                                        GetGrades, LimitOutput, SaveAutoGrades)
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor

    from .trusted import TrustedExecute

    cfg = nbgrader_config(course, root=root, db_url=db_url, submitted=out / "submitted", out=out)
    cfg.Autograde.autograde_preprocessors = [TrustedExecute, ClearMetadataPreprocessor, LimitOutput,
                                             SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    cfg.TrustedExecute.run_seed = run_seed
    cfg.TrustedExecute.results_dir = str(out / "results")
    # feedback shows results and messages, never the source of a hidden test
    cfg.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
    cfg.ClearHiddenTests.enforce_metadata = False
    return cfg


def ensure_gradebook(api, course: Course, assignments: set[str], out: Path) -> None:
    """Record the source notebooks of ``assignments`` in the gradebook (generate_assignment
    into a scratch release directory: exercises/ is not touched)."""
    api.coursedir.release_directory = str(out / "release")
    for a in course.assignments:
        if a.id in assignments:
            res = api.generate_assignment(a.id, force=True, create=True)
            if not res["success"]:
                raise RuntimeError(f"could not register {a.id} in the gradebook:\n{res.get('log', '')[-2000:]}")


def already_graded(out: Path, student: str, assignment: str, subs: list[Submission]) -> bool:
    """True when every staged notebook of this (student, assignment) has a result on disk
    that is newer than the submission."""
    for s in subs:
        res = out / "results" / student / assignment / f"{s.notebook}.json"
        if not res.exists() or res.stat().st_mtime < s.path.stat().st_mtime:
            return False
    return True


def autograde(submitted: Path, out: Path, db_url: str | None = None, *, force: bool = False,
              run_seed: str | None = None, feedback: bool = True, root: Path = ROOT,
              progress=None) -> RunReport:
    """Grade every submission under ``submitted`` into the gradebook; see module docstring.

    Args:
        submitted: ``<student>/<assignment>/<tier>.ipynb`` tree.
        out: output directory (grades.csv, feedback/, autograded/, results/, gradebook).
        db_url: SQLAlchemy URL of the gradebook (default ``sqlite:///OUT/gradebook.db``).
        force: regrade submissions that already have results.
        run_seed: seed of this run (random by default); recorded with every grade.
        feedback: also write HTML feedback.
        progress: optional callable ``progress(done, total, label)``.

    Returns:
        A :class:`RunReport`; ``report.rows`` are the grades.csv rows.
    """
    from .report import export_rows, write_csv
    from .pool import WarmPool
    from .trusted import TrustedExecute

    t0 = time.perf_counter()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    course = load_course(root / "course.yml")
    db_url = db_url or f"sqlite:///{out / 'gradebook.db'}"
    run_seed = run_seed or secrets.token_hex(8)
    report = RunReport(out, db_url, run_seed, sandbox_status())

    subs, report.problems = collect(Path(submitted), course, root)
    stage(subs, out / "submitted")
    api = nbgrader_api(autograde_config(course, out, db_url, run_seed, root))
    assignments = {s.assignment for s in subs} | {p.assignment for p in report.problems
                                                 if p.assignment in {a.id for a in course.assignments}}
    ensure_gradebook(api, course, assignments, out)

    groups: dict[tuple[str, str], list[Submission]] = {}
    for s in subs:
        groups.setdefault((s.student, s.assignment), []).append(s)
    for p in report.problems:  # a student whose only file was corrupt still gets zeros
        if p.notebook and (p.student, p.assignment) not in groups:
            groups[(p.student, p.assignment)] = []
    with WarmPool(size=1) as pool:
        TrustedExecute.worker_factory = staticmethod(pool.get)
        for n, ((student, assignment), group) in enumerate(sorted(groups.items())):
            if progress:
                progress(n, len(groups), f"{student}/{assignment}")
            if group and not force and already_graded(out, student, assignment, group):
                report.skipped.append((student, assignment))
                continue
            if not group:  # nothing gradable: record zeros so the student still appears
                _record_zero_submission(api, course, student, assignment)
                report.graded.append((student, assignment))
                continue
            res = api.autograde(assignment, student, force=True, create=True)
            if not res["success"]:
                report.failed.append((student, assignment, _last_error(res)))
                continue
            report.graded.append((student, assignment))
            if feedback:
                api.generate_feedback(assignment, student, force=True)
        if progress:
            progress(len(groups), len(groups), "done")
    report.rows = export_rows(api, course, out, report.problems)
    write_csv(report.rows, out / "grades.csv")
    report.seconds = time.perf_counter() - t0
    return report


def _record_zero_submission(api, course: Course, student: str, assignment: str) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(api.coursedir.db_url, course.id) as gb:
        gb.update_or_create_student(student)
        sub = gb.update_or_create_submission(assignment, student)
        for nb in sub.notebooks:
            for g in nb.grades:
                if g.auto_score is None:
                    g.auto_score = 0
                    g.needs_manual_grade = False
        gb.db.commit()


def _last_error(res: dict) -> str:
    log = (res.get("error") or res.get("log") or "").strip().splitlines()
    errs = [line for line in log if "ERROR" in line or "Error" in line]
    return (errs[-1] if errs else (log[-1] if log else "nbgrader autograde failed"))[:300]
