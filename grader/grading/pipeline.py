"""``grader autograde``: the grading pipeline, composed in one place.

    collect   -> find submissions; refuse corrupt, unknown and foreign files one by one
    gradebook -> a template gradebook that knows every assignment (nbgrader's
                 generate_assignment, once per change of the sources); the real gradebook
                 starts from it or is updated through the same API
    tasks     -> one task per (student, assignment), run in parallel processes or on a Dask
                 cluster (tasks.py): nbgrader's Autograde with its sanitize stages plus
                 RestoreTestCells, then TrustedExecute in place of Execute, then
                 generate_feedback with hidden tests cleared, all on a private gradebook copy
    merge     -> the single writer: each outcome goes into the real gradebook, then its files
                 and trusted results into OUT (results last: what has them is done)
    report    -> OUT/grades.csv and the summary table

Every stage but ``TrustedExecute`` and ``RestoreTestCells`` is nbgrader's own or a thin
wrapper around it.
"""
from __future__ import annotations

import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..course import ROOT, Course, load_course
from ..nbgrader_course import nbgrader_config
from .collect import Problem, Submission, collect
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
    phases: dict[str, float] = field(default_factory=dict)  # seconds per stage


def autograde_config(course: Course, out: Path, db_url: str, run_seed: str, root: Path = ROOT):
    """nbgrader config for trusted autograding into ``out``."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearHiddenTests,
                                        GetGrades, LimitOutput, SaveAutoGrades)
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor

    from .trusted import TrustedExecute

    cfg = nbgrader_config(course, root=root, db_url=db_url, submitted=out / "submitted", out=out)
    from nbgrader.preprocessors import (ClearOutput, DeduplicateIds, OverwriteCells, OverwriteKernelspec)

    from .restore import RestoreTestCells

    cfg.Autograde.sanitize_preprocessors = [ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells,
                                            RestoreTestCells, CheckCellMetadata]
    cfg.Autograde.autograde_preprocessors = [TrustedExecute, ClearMetadataPreprocessor, LimitOutput,
                                             SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    cfg.TrustedExecute.run_seed = run_seed
    cfg.TrustedExecute.results_dir = str(out / "results")
    cfg.TrustedExecute.source_dir = str(root / "solutions")
    # feedback shows results and messages, never the source of a hidden test
    cfg.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
    cfg.ClearHiddenTests.enforce_metadata = False
    return cfg


def template_gradebook(course: Course, out: Path, root: Path = ROOT,
                       assignments: set[str] | None = None) -> Path:
    """A gradebook that knows the source notebooks of ``assignments`` (default: all), built
    with nbgrader's generate_assignment once and reused while the sources are unchanged."""
    import hashlib

    from ..nbgrader_course import nbgrader_api

    wanted = [a for a in course.assignments if assignments is None or a.id in assignments]
    h = hashlib.sha256((root / "course.yml").read_bytes())
    h.update(",".join(a.id for a in wanted).encode())
    for a, t in course.notebooks():
        src = root / "solutions" / a / f"{t}.ipynb"
        h.update(src.read_bytes() if src.exists() else b"missing")
    key = h.hexdigest()[:16]
    tdir = out / ".template"
    db = tdir / f"gradebook-{key}.db"
    if db.exists():
        return db
    tdir.mkdir(parents=True, exist_ok=True)
    for old in tdir.glob("gradebook-*.db"):
        old.unlink()
    api = nbgrader_api(autograde_config(course, tdir, f"sqlite:///{db}", "", root))
    api.coursedir.release_directory = str(tdir / "release")
    for a in wanted:
        if not (root / "solutions" / a.id).is_dir():
            continue  # `grader build` reports missing notebooks; grading what exists still works
        res = api.generate_assignment(a.id, force=True, create=True)
        if not res["success"]:
            raise RuntimeError(f"could not register {a.id} in the gradebook:\n{res.get('log', '')[-2000:]}")
    shutil.rmtree(tdir / "release", ignore_errors=True)
    return db


def ensure_gradebook(db_url: str, template: Path, course: Course, out: Path, root: Path = ROOT,
                     assignments: set[str] | None = None) -> None:
    """Make the real gradebook know every assignment.  A new SQLite gradebook starts as a
    copy of the template; any other (existing, or PostgreSQL) is updated through nbgrader's
    generate_assignment, which keeps the grades it already holds."""
    from nbgrader.api import Gradebook

    from ..nbgrader_course import nbgrader_api

    if db_url.startswith("sqlite:///"):
        path = Path(db_url[len("sqlite:///"):])
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(template, path)
            return
    with Gradebook(db_url, course.id) as gb:
        known = {a.name for a in gb.assignments}
        n_cells = sum(len(nb.grade_cells) for a in gb.assignments for nb in a.notebooks)
    with Gradebook(f"sqlite:///{template}", course.id) as tb:
        t_cells = sum(len(nb.grade_cells) for a in tb.assignments for nb in a.notebooks)
    wanted = [a for a in course.assignments if assignments is None or a.id in assignments]
    if known >= {a.id for a in wanted} and n_cells >= t_cells:
        return
    api = nbgrader_api(autograde_config(course, out, db_url, "", root))
    api.coursedir.release_directory = str(out / ".template" / "release")
    for a in wanted:
        res = api.generate_assignment(a.id, force=True, create=True)
        if not res["success"]:
            raise RuntimeError(f"could not register {a.id} in the gradebook:\n{res.get('log', '')[-2000:]}")


def already_graded(out: Path, student: str, assignment: str, subs: list[Submission]) -> bool:
    """True when every submitted notebook of this (student, assignment) has a trusted
    result on disk newer than the submission (results are written last, after the
    gradebook commit, so a result on disk means the grade is safe)."""
    for s in subs:
        res = out / "results" / student / assignment / f"{s.notebook}.json"
        if not res.exists() or res.stat().st_mtime < s.path.stat().st_mtime:
            return False
    return True


class _Executor:
    """Runs grading tasks in-process, in a local process pool, or on a Dask cluster."""

    def __init__(self, workers: int, scheduler: str | None):
        self.scheduler, self.workers = scheduler, workers
        self.client = self.pool = None
        if scheduler:
            from distributed import Client

            self.client = Client(scheduler, timeout=30)
        elif workers > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            from .tasks import warm_up

            self.pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=warm_up)

    def run(self, tasks):
        """Yield (task, outcome or exception) as tasks finish; one retry on a crash."""
        from .tasks import grade_task

        if self.client is not None:
            from distributed import as_completed

            futs = {self.client.submit(grade_task, t, pure=False, retries=1): t for t in tasks}
            for fut in as_completed(futs):
                try:
                    yield futs[fut], fut.result()
                except Exception as e:
                    yield futs[fut], e
        elif self.pool is not None:
            from concurrent.futures import as_completed

            futs = {self.pool.submit(grade_task, t): t for t in tasks}
            for fut in as_completed(futs):
                t = futs[fut]
                try:
                    yield t, fut.result()
                except Exception:
                    try:  # the process died mid-notebook: one retry, in this process
                        yield t, grade_task(t)
                    except Exception as e2:
                        yield t, e2
        else:
            for t in tasks:
                try:
                    yield t, grade_task(t)
                except Exception as e:
                    yield t, e

    def close(self):
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
        if self.client is not None:
            self.client.close()


def autograde(submitted: Path, out: Path, db_url: str | None = None, *, force: bool = False,
              run_seed: str | None = None, feedback: bool = True, root: Path = ROOT,
              workers: int | None = None, scheduler: str | None = None, progress=None) -> RunReport:
    """Grade every submission under ``submitted`` into the gradebook; see module docstring.

    Args:
        submitted: ``<student>/<assignment>/<tier>.ipynb`` tree.
        out: output directory (grades.csv, feedback/, autograded/, results/, gradebook).
        db_url: SQLAlchemy URL of the gradebook (default ``sqlite:///OUT/gradebook.db``).
        force: regrade submissions that already have results.
        run_seed: seed of this run (random by default); recorded with every grade.
        feedback: also write HTML feedback.
        workers: local grading processes (default: the number of CPU cores).
        scheduler: address of a Dask distributed scheduler; tasks go there instead.
        progress: optional callable ``progress(done, total, label)``.

    Returns:
        A :class:`RunReport`; ``report.rows`` are the grades.csv rows.
    """
    import os

    from nbgrader.api import Gradebook

    from .report import export_rows, write_csv
    from .tasks import GradeOutcome, GradeTask, write_outcome

    t0 = time.perf_counter()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    course = load_course(root / "course.yml")
    db_url = db_url or f"sqlite:///{out / 'gradebook.db'}"
    run_seed = run_seed or secrets.token_hex(8)
    report = RunReport(out, db_url, run_seed, sandbox_status())

    subs, report.problems = collect(Path(submitted), course, root)
    report.phases["collect"] = time.perf_counter() - t0
    known = {a.id for a in course.assignments}
    needed = {s.assignment for s in subs} | {p.assignment for p in report.problems if p.assignment in known}
    template = template_gradebook(course, out, root, needed)
    ensure_gradebook(db_url, template, course, out, root, needed)
    template_bytes = template.read_bytes()
    report.phases["gradebook"] = time.perf_counter() - t0 - sum(report.phases.values())

    groups: dict[tuple[str, str], list[Submission]] = {}
    for s in subs:
        groups.setdefault((s.student, s.assignment), []).append(s)
    for p in report.problems:  # a student whose only file was corrupt still gets zeros
        if p.notebook and p.assignment in known and (p.student, p.assignment) not in groups:
            groups[(p.student, p.assignment)] = []
    tasks = []
    for (student, assignment), group in sorted(groups.items()):
        if group and not force and already_graded(out, student, assignment, group):
            report.skipped.append((student, assignment))
        else:
            tasks.append(GradeTask(student, assignment, {s.notebook: s.path.read_bytes() for s in group},
                                   run_seed, template_bytes, feedback, str(root)))
    workers = workers or os.cpu_count() or 1
    executor = _Executor(min(workers, max(1, len(tasks))), scheduler)
    done = 0
    try:
        with Gradebook(db_url, course.id) as gb:  # the single writer
            for task, outcome in executor.run([t for t in tasks if t.notebooks]):
                if isinstance(outcome, BaseException) or not outcome.ok:
                    why = outcome.error if isinstance(outcome, GradeOutcome) else f"{type(outcome).__name__}: {outcome}"
                    report.failed.append((task.student, task.assignment, why.strip().splitlines()[-1][:300] if why else "failed"))
                    # zeros in the gradebook so the student appears; no results file, so a rerun retries it
                    write_outcome(GradeOutcome(task.student, task.assignment, ok=False), gb, out)
                else:
                    write_outcome(outcome, gb, out)
                    report.graded.append((task.student, task.assignment))
                done += 1
                if progress:
                    progress(done, len(tasks), f"{task.student}/{task.assignment}")
            for task in (t for t in tasks if not t.notebooks):  # nothing gradable: zeros
                if not force and _has_submission(gb, task.assignment, task.student):
                    report.skipped.append((task.student, task.assignment))
                    continue
                write_outcome(GradeOutcome(task.student, task.assignment, ok=True), gb, out)
                report.graded.append((task.student, task.assignment))
    finally:
        executor.close()
    report.phases["grading"] = time.perf_counter() - t0 - sum(report.phases.values())
    with Gradebook(db_url, course.id) as gb:
        report.rows = export_rows(gb, course, out, report.problems,
                                  {(s, a): why for s, a, why in report.failed})
    write_csv(report.rows, out / "grades.csv")
    report.seconds = time.perf_counter() - t0
    report.phases["report"] = report.seconds - sum(report.phases.values())
    return report


def _has_submission(gb, assignment: str, student: str) -> bool:
    from nbgrader.api import MissingEntry

    try:
        gb.find_submission(assignment, student)
        return True
    except MissingEntry:
        return False
