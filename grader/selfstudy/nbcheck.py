"""``grader check NOTEBOOK``: run a notebook top to bottom and check every exercise in it.

The notebook is executed with nbclient in a fresh kernel.  Each test cell is parsed with
:func:`grader.grading.checkcalls.parse_check_calls` and replaced, only in the copy that is
executed, by a call to :func:`run_calls`, which checks the learner's globals and prints one
machine-readable line per exercise.  Self-study only: nothing here feeds a grade, so running
the learner's code in-kernel is fine.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import nbformat

MARK = "@@grader-check@@ "


@dataclass
class Verdict:
    """The outcome of one exercise's check, as printed by ``grader check``."""

    spec_id: str
    status: str  # "passed" | "failed" | "not attempted" | "error"
    summary: str
    report: str

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass
class NotebookCheck:
    """Every verdict of one notebook, its hand-graded answers and errors outside tests."""

    path: Path
    verdicts: list[Verdict]
    manual: list[str]  # grade ids of manually graded (written) answers
    cell_errors: list[str]  # "cell 7: NotImplementedError: ..." outside test cells

    @property
    def passed(self) -> bool:
        return bool(self.verdicts) and all(v.passed for v in self.verdicts)


def run_calls(calls: list[tuple[str, str, bool]], ns: dict, seed: int | None = None) -> None:
    """Check each ``(spec_id, entry, hidden)`` against the learner's namespace ``ns`` and
    print one ``MARK``-prefixed JSON line per distinct spec (hidden if any call asks for it).

    Runs inside the notebook's kernel.  Never raises for a learner's mistake.
    """
    from grader.checks import get, invoke, run_spec

    from .progress import record

    merged: dict[str, tuple[str, bool]] = {}
    for spec_id, entry, hidden in calls:
        prev = merged.get(spec_id, (entry, False))
        merged[spec_id] = (entry, prev[1] or hidden)
    for spec_id, (entry, hidden) in merged.items():
        try:
            s = get(spec_id)
            if entry not in ns:
                line = f"NOT ATTEMPTED {spec_id}: `{entry}` is not defined (its cell raised or was not run)."
                out = {"spec_id": spec_id, "status": "not attempted", "summary": line, "report": line}
            else:
                fn = ns[entry]
                sd = int.from_bytes(os.urandom(4), "little") if seed is None else seed
                res = run_spec(s, lambda c: invoke(fn, s.framework, c.args, c.kwargs), seed=sd, hidden=hidden)
                try:
                    record(res)
                except Exception:  # progress is a convenience; never break a check
                    pass
                out = {"spec_id": spec_id, "status": res.status, "summary": res.summary(),
                       "report": res.report()}
        except Exception as e:  # a broken spec or missing reference: say so, do not crash
            msg = f"ERROR {spec_id}: the check itself failed: {type(e).__name__}: {e}"
            out = {"spec_id": spec_id, "status": "error", "summary": msg, "report": msg}
        print(MARK + json.dumps(out), flush=True)


def _is_test_cell(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def _is_written_cell(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.cell_type == "markdown" and bool(meta.get("grade")) and bool(meta.get("solution"))


def _prepare(path: Path, seed: int | None):
    """Read a notebook and rewrite its test cells (in memory) into :func:`run_calls` calls.
    Returns (notebook, {cell index: [spec ids]}, manual grade ids)."""
    from grader.grading.checkcalls import parse_check_calls

    nb = nbformat.read(path, as_version=4)
    test_cells: dict[int, list[str]] = {}
    manual = []
    for i, cell in enumerate(nb.cells):
        if _is_written_cell(cell):
            manual.append(cell.metadata["nbgrader"].get("grade_id", f"cell {i}"))
        if not _is_test_cell(cell):
            continue
        calls = parse_check_calls(cell.source)
        test_cells[i] = [c.spec_id for c in calls]
        triples = [(c.spec_id, c.entry, c.hidden) for c in calls]
        cell.source = (f"from grader.selfstudy.nbcheck import run_calls as __grader_run_calls\n"
                       f"__grader_run_calls({triples!r}, globals(), seed={seed!r})")
    return nb, test_cells, manual


def _collect(path, cells, test_cells, manual, fatal) -> NotebookCheck:
    verdicts: dict[str, Verdict] = {}
    errors = []
    for i, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and i in test_cells:
                for line in out.get("text", "").splitlines():
                    if line.startswith(MARK):
                        d = json.loads(line[len(MARK):])
                        verdicts[d["spec_id"]] = Verdict(**d)
            elif out.get("output_type") == "error":
                errors.append(f"cell {i}: {out.get('ename')}: {str(out.get('evalue'))[:200]}")
    ordered: list[Verdict] = []
    for i in sorted(test_cells):
        for sid in dict.fromkeys(test_cells[i]):
            if sid in verdicts:
                ordered.append(verdicts.pop(sid))
            elif not any(v.spec_id == sid for v in ordered):
                msg = f"ERROR {sid}: not checked ({fatal or 'its test cell did not run'})."
                ordered.append(Verdict(sid, "error", msg, msg))
    if fatal:
        errors.append(f"execution stopped: {fatal}")
    return NotebookCheck(Path(path), ordered, manual, errors)


def check_notebooks(paths: list[str | Path], *, seed: int | None = None, timeout: int = 600,
                    kernel_name: str = "python3") -> list[NotebookCheck]:
    """Check several notebooks one after the other in a single kernel, with the kernel's
    namespace reset (``%reset -f``) and the working directory changed between them.

    Cheaper than one kernel each (the kernel start and the imports are paid once); module
    state other than the namespace (e.g. ``torch.set_default_dtype``) is shared, so use it
    for notebooks that restore what they change.  Arguments as in :func:`check_notebook`.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbformat.v4 import new_code_cell, new_notebook

    paths = [Path(p) for p in paths]
    parts = []
    combined = new_notebook()
    combined.metadata = nbformat.read(paths[0], as_version=4).metadata if paths else {}
    for path in paths:
        nb, test_cells, manual = _prepare(path, seed)
        reset = new_code_cell("get_ipython().run_line_magic('reset', '-f')\n"
                              "import os as __os, matplotlib.pyplot as __plt\n"
                              f"__plt.close('all'); __os.chdir({str(path.parent.resolve())!r})\n"
                              "del __os, __plt")
        combined.cells.append(reset)
        start = len(combined.cells)
        combined.cells.extend(nb.cells)
        parts.append((path, start, len(nb.cells), test_cells, manual))
    client = NotebookClient(combined, timeout=timeout, kernel_name=kernel_name, allow_errors=True,
                            resources={"metadata": {"path": str(paths[0].parent.resolve())}})
    fatal = None
    try:
        client.execute()
    except (CellTimeoutError, DeadKernelError) as e:
        fatal = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return [_collect(path, combined.cells[start:start + n], test_cells, manual, fatal)
            for path, start, n, test_cells, manual in parts]


def check_notebook(path: str | Path, *, seed: int | None = None, timeout: int = 600,
                   kernel_name: str = "python3") -> NotebookCheck:
    """Execute the notebook at ``path`` in a fresh kernel and return one verdict per
    exercise it checks, plus the manually graded answers and errors raised outside tests.

    Args:
        path: a source (instructor) or exercise (student) notebook.
        seed: seed of the random cases (fresh per exercise by default).
        timeout: seconds any one cell may run.
        kernel_name: the Jupyter kernel to execute with.

    Raises:
        FileNotFoundError: no such notebook.
        ValueError: a test cell holds something other than check(...) calls.
    """
    return check_notebooks([path], seed=seed, timeout=timeout, kernel_name=kernel_name)[0]
