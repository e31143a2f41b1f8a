"""``TrustedExecute``: nbgrader's Execute stage, replaced.

nbgrader runs a notebook's tests inside the student's kernel, where student code can patch
the comparisons, kill the grader or edit the gradebook.  This preprocessor instead

1. runs the student's code cells in a sandboxed worker (:mod:`grader.grading.sandbox`);
2. reads the ``check("<spec>", <name>)`` calls of every test cell from the instructor's copy
   of the cell (restored by nbgrader's OverwriteCells), and never executes test-cell code;
3. evaluates each spec here, in the trusted process: cases are generated from a seed drawn
   per student and per run, each case is sent to the worker as plain data, the answer
   comes back as plain data, and reference kernels and comparisons run only here;
4. writes the verdict as the test cell's output (an error output when a check fails), so
   nbgrader's own SaveAutoGrades computes the score from outputs no student wrote, and
   records the structured result (diagnosis, seed, flags) in ``resources``.

A timeout or a crash fails only the test that hit it; the worker is restarted for the
rest of the notebook.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

from nbformat.v4 import new_output
import nbformat
from traitlets import Bool, Unicode

from grader.checks import get, run_spec
from grader.checks.run import CheckResult, CaseResult
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution

from .checkcalls import parse_check_calls
from .flags import static_flags
from .sandbox import Worker, WorkerDied, WorkerTimeout


class _Abort(BaseException):
    """Stops a spec when its worker timed out or died (not catchable as Exception)."""


class _LearnerError(Exception):
    """The student's function raised ``etype`` (a name reported by the sandbox)."""

    def __init__(self, message: str, etype: str):
        super().__init__(message)
        self.etype = etype


def derive_seed(run_seed: str, *parts: str) -> int:
    """A 32-bit seed from the run seed and the ids (student, assignment, notebook, grade)."""
    h = hashlib.sha256(":".join([run_seed, *parts]).encode()).digest()
    return int.from_bytes(h[:4], "little")


def _is_test(cell) -> bool:
    return cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)


class TrustedExecute(NbGraderPreprocessor):
    """Grade a notebook by evaluating its specs outside the student's process."""

    run_seed = Unicode("", help="seed of this grading run; per-test seeds derive from it").tag(config=True)
    results_dir = Unicode("", help="where to write <student>/<assignment>/<notebook>.json results").tag(config=True)
    source_dir = Unicode("", help="the instructor notebooks (solutions/)").tag(config=True)
    skip_demos = Bool(True, help="do not run instructor demo cells (plots, experiments) the student "
                                 "left unchanged: they cannot affect a grade").tag(config=True)

    #: how workers are obtained; replaced by the pool for warm workers
    worker_factory: Callable[[], Worker] = Worker

    def preprocess(self, nb, resources):
        ids = resources["nbgrader"]
        who = (ids["student"], ids["assignment"], ids["notebook"])
        results: dict[str, dict] = {}
        demos = self._demo_sources(ids["assignment"], ids["notebook"])
        # scan what the student wrote: solution cells and cells they added or changed
        flags = static_flags(c.source for c in nb.cells if c.cell_type == "code" and not _is_test(c)
                             and (is_solution(c) or ("nbgrader" not in c.metadata and c.source not in demos)))
        restored = nb.metadata.get("grader", {}).get("restored_test_cells", [])
        if restored:
            flags.append(f"deleted test cell(s) {', '.join(restored)} (restored and graded)")
        worker: Worker | None = None
        worker_info = None
        pending: list[int] = []  # code cells not yet run in the current worker
        executed: list[int] = []  # code cells the current worker has run
        try:
            for i, cell in enumerate(nb.cells):
                if cell.cell_type != "code" or ("nbgrader" not in cell.metadata and cell.source in demos):
                    continue
                if not _is_test(cell):
                    pending.append(i)
                    continue
                gid = cell.metadata["nbgrader"]["grade_id"]
                if worker is None:
                    worker, pending, executed = self._fresh_worker(nb, executed + pending, flags)
                    worker_info = worker
                elif pending:
                    self._exec(worker, nb, pending, flags)
                    executed, pending = executed + pending, []
                seed = derive_seed(self.run_seed, *who, gid)
                res, worker_ok = self._grade_cell(worker, cell, seed, flags)
                results[gid] = res
                if not worker_ok:
                    worker.kill()
                    worker = None  # a fresh one re-runs the cells before the next test
            if pending:
                if worker is None:
                    worker, pending, executed = self._fresh_worker(nb, executed + pending, flags)
                else:
                    self._exec(worker, nb, pending, flags)
        finally:
            if worker is not None:
                worker.kill()
        record = {"student": who[0], "assignment": who[1], "notebook": who[2],
                  "run_seed": self.run_seed, "sandbox": getattr(worker_info, "sandboxed", None),
                  "flags": sorted(set(flags)), "tests": results}
        resources.setdefault("grader", {}).update(record)
        if self.results_dir:
            path = Path(self.results_dir, *who[:2], f"{who[2]}.json")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(record, indent=1))
        return nb, resources

    # -- stages -----------------------------------------------------------------------
    def _demo_sources(self, assignment: str, notebook: str) -> set[str]:
        """Sources of the instructor's plain code cells (no nbgrader metadata)."""
        if not (self.skip_demos and self.source_dir):
            return set()
        path = Path(self.source_dir, assignment, f"{notebook}.ipynb")
        if not path.exists():
            return set()
        src = nbformat.read(path, as_version=4)
        return {c.source for c in src.cells if c.cell_type == "code" and "nbgrader" not in c.metadata}

    def _fresh_worker(self, nb, cells: list[int], flags: list[str]):
        worker = self.worker_factory()
        try:
            self._exec(worker, nb, cells, flags)
        except (WorkerDied, WorkerTimeout):
            pass  # the next request reports the death
        return worker, [], list(cells)

    def _exec(self, worker: Worker, nb, cells: list[int], flags: list[str]) -> None:
        for i in cells:
            nb.cells[i].outputs = []
        try:
            reply = worker.request({"op": "exec", "cells": [nb.cells[i].source for i in cells]},
                                   timeout=60.0 + 30.0 * len(cells))
        except WorkerTimeout as e:
            flags.append(f"timeout while running the notebook's cells ({e})")
            raise
        except WorkerDied as e:
            flags.append(f"process died while running the notebook's cells: {e}")
            raise
        for i, out in zip(cells, reply.get("cells", [])):
            text = str(out.get("stdout", ""))
            if text:
                nb.cells[i].outputs.append(new_output("stream", name="stdout", text=text))
            if not out.get("ok"):
                err = str(out.get("error", "error"))
                nb.cells[i].outputs.append(new_output("error", ename=err.split(":")[0][:80],
                                                      evalue=err, traceback=[str(out.get("traceback", err))]))

    def _grade_cell(self, worker: Worker, cell, seed: int, flags: list[str]) -> tuple[dict, bool]:
        calls = parse_check_calls(cell.source)
        # the hidden call of a spec covers its visible one: evaluate each spec once
        by_spec: dict[str, Any] = {}
        for c in calls:
            if c.spec_id not in by_spec or c.hidden:
                by_spec[c.spec_id] = c
        reports, statuses, diagnoses, ok = [], [], [], True
        for c in by_spec.values():
            spec = get(c.spec_id)
            result, ok = self._evaluate(worker, spec, c.entry, seed, flags)
            reports.append(result.report() if not result.passed else result.summary())
            statuses.append(result.status)
            diagnoses.append(result.diagnosis_text)
            if not ok:
                break
        passed = bool(statuses) and all(s == "passed" for s in statuses) and len(statuses) == len(by_spec)
        text = "\n".join(reports)
        if passed:
            cell.outputs = [new_output("stream", name="stdout", text=text + "\n")]
        else:
            cell.outputs = [new_output("error", ename="CheckFailed", evalue=text, traceback=[text])]
        status = "passed" if passed else ("not attempted" if statuses and all(
            s == "not attempted" for s in statuses) else "failed")
        if not ok and status != "passed":
            status = "error"
        return {"status": status, "message": text, "diagnosis": "; ".join(d for d in diagnoses if d),
                "seed": seed, "specs": list(by_spec)}, ok

    def _evaluate(self, worker: Worker, spec, entry: str, seed: int, flags: list[str]) -> tuple[CheckResult, bool]:
        failure: list[str] = []

        def call(case):
            try:
                reply = worker.request({"op": "call", "entry": entry, "framework": spec.framework,
                                        "args": list(case.args), "kwargs": case.kwargs}, timeout=spec.timeout)
            except WorkerTimeout:
                failure.append(f"case '{case.name}' ran longer than its {spec.timeout:g} s limit")
                flags.append(f"{spec.id}: timed out")
                raise _Abort()
            except WorkerDied as e:
                failure.append(f"case '{case.name}': {e}")
                flags.append(f"{spec.id}: {e}")
                raise _Abort()
            if reply.get("ok"):
                return reply.get("out")
            if reply.get("not_attempted"):
                raise NotImplementedError()
            raise _LearnerError(str(reply.get("error", ""))[:500], str(reply.get("etype", "Error")))

        try:
            return run_spec(spec, call, seed=seed, hidden=True), True
        except _Abort:
            res = CheckResult(spec.id, seed, "failed", [CaseResult("(sandbox)", False, failure[-1])])
            return res, False
