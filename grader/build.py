"""``grader build``: course.yml -> synced solution notebooks -> generated ``exercises/``.

Stages, in order:

1. :func:`sync_kernels` rewrites every solution cell that names reference kernels
   (``metadata.grader.kernels``) from the kernels' source, wrapping each function body in
   nbgrader's ``### BEGIN SOLUTION`` / ``### END SOLUTION``.  The kernel in
   ``solutions/kernels`` stays the single source of the right answer.
2. :func:`lint_notebook` checks the nbgrader metadata the rest relies on: test cells hold only
   ``check(...)`` calls, their points add up to course.yml's.
3. :func:`generate_exercises` runs nbgrader's generate_assignment through its API, writing
   student versions (no solutions, no hidden tests, no outputs) to ``exercises/``.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import shutil
import tempfile
import textwrap
from pathlib import Path

import nbformat

from .course import ROOT, Course, load_course
from .nbgrader_course import nbgrader_api, nbgrader_config

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


class BuildError(RuntimeError):
    """The course cannot be built; the message names the notebook and cell."""


def solution_source(obj) -> str:
    """Source of a kernel function or class with every function body wrapped in solution
    markers (the docstring stays visible: it is the learner's spec)."""
    src = textwrap.dedent(inspect.getsource(obj))
    lines = src.splitlines()
    tree = ast.parse(src)
    inserts: list[tuple[int, str]] = []  # (line index, text) inserted before that line
    funcs = []
    for node in tree.body:  # top-level functions, and the methods of top-level classes
        funcs += node.body if isinstance(node, ast.ClassDef) else [node]
    for node in funcs:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                and isinstance(body[0].value.value, str):
            body = body[1:]
        if not body:
            continue
        indent = " " * body[0].col_offset
        first = body[0].lineno - 1
        inserts.append((first, indent + BEGIN))
        inserts.append((body[-1].end_lineno, indent + END))
    for idx, text in sorted(inserts, key=lambda p: p[0], reverse=True):
        lines.insert(idx, text)
    return "\n".join(lines)


def _kernel(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(f"solutions.kernels.{module}"), name)


def sync_kernels(nb) -> bool:
    """Regenerate solution cells from their kernels; return True when anything changed."""
    changed = False
    for cell in nb.cells:
        names = cell.get("metadata", {}).get("grader", {}).get("kernels")
        if not names:
            continue
        new = "\n\n\n".join(solution_source(_kernel(n)) for n in names)
        if cell.source != new:
            cell.source = new
            changed = True
    return changed


def lint_notebook(nb, path: Path, expected_points: float) -> list[str]:
    """Problems with a source notebook's grading metadata (empty list when fine)."""
    from .grading.checkcalls import parse_check_calls

    problems, total, ids = [], 0.0, set()
    for i, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and cell.get("outputs"):
            problems.append(f"{path} cell {i}: committed with outputs")
        if not meta:
            continue
        gid = meta.get("grade_id")
        if gid in ids:
            problems.append(f"{path} cell {i}: duplicate grade_id {gid!r}")
        ids.add(gid)
        if meta.get("grade") and cell.cell_type == "code" and not meta.get("solution"):
            total += float(meta.get("points", 0))
            try:
                if not parse_check_calls(cell.source):
                    problems.append(f"{path} cell {i} ({gid}): a test cell must call check(...)")
            except ValueError as e:
                problems.append(f"{path} cell {i} ({gid}): {e}")
        elif meta.get("grade"):
            total += float(meta.get("points", 0))
    if abs(total - expected_points) > 1e-9:
        problems.append(f"{path}: test cells carry {total:g} points, course.yml says {expected_points:g}")
    return problems


def source_path(assignment: str, tier: str, root: Path = ROOT) -> Path:
    return root / "solutions" / assignment / f"{tier}.ipynb"


def generate_exercises(course: Course, release: Path, root: Path = ROOT,
                       only: list[str] | None = None) -> None:
    """Run nbgrader generate_assignment for every assignment (or those in ``only``),
    writing student versions into ``release``."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = nbgrader_config(course, root=root, release=release, out=Path(tmp),
                              db_url=f"sqlite:///{tmp}/gradebook.db")
        api = nbgrader_api(cfg)
        for a in course.assignments:
            if only and a.id not in only:
                continue
            res = api.generate_assignment(a.id, force=True, create=True)
            if not res["success"]:
                raise BuildError(f"nbgrader generate_assignment {a.id} failed:\n{res.get('error') or res.get('log')}")


def build(root: Path = ROOT, check_only: bool = False, only: list[str] | None = None) -> list[str]:
    """Validate, sync and generate.  Returns the list of files written (or, with
    ``check_only``, that would be written: a non-empty list means ``exercises/`` is stale).
    ``only`` restricts the work to some assignment ids.

    Raises:
        CourseError: course.yml is invalid.
        BuildError: a notebook is missing or its grading metadata is wrong.
    """
    course = load_course(root / "course.yml")
    problems, changed = [], []
    for a in only or []:
        course.assignment(a)  # KeyError names the known ids
    wanted = [(a, t) for a, t in course.notebooks() if not only or a in only]
    for a_id, tier in wanted:
        path = source_path(a_id, tier, root)
        if not path.exists():
            problems.append(f"{path}: listed in course.yml but missing")
            continue
        nb = nbformat.read(path, as_version=4)
        if sync_kernels(nb):
            changed.append(str(path.relative_to(root)))
            if not check_only:
                nbformat.write(nb, path)
        problems += lint_notebook(nb, path.relative_to(root), course.assignment(a_id).notebooks[tier].points)
    if problems:
        raise BuildError("\n".join(problems))
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "exercises"
        generate_exercises(course, fresh, root, only)
        target = root / "exercises"
        for a_id, tier in wanted:
            rel = Path(a_id) / f"{tier}.ipynb"
            new, old = fresh / rel, target / rel
            if not old.exists() or old.read_text() != new.read_text():
                changed.append(str(Path("exercises") / rel))
        listed = {Path(a) / f"{t}.ipynb" for a, t in course.notebooks()}
        extra = [p for p in target.rglob("*.ipynb") if p.relative_to(target) not in listed
                 and (not only or p.relative_to(target).parts[0] in only)] if target.exists() else []
        changed += [str(p.relative_to(root)) for p in extra]
        if not check_only:
            for p in extra:
                p.unlink()
            for a_id, tier in wanted:
                rel = Path(a_id) / f"{tier}.ipynb"
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(fresh / rel, target / rel)
    return changed
