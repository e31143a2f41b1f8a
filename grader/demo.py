"""``grader demo``: build the course, then autograde a generated class of sample students.

The class is generated from the course itself (so it never drifts from it):

* ``correct``: every exercise completed with the reference solution;
* ``mistake-<kernel>-<mutant>``: the correct notebooks with one function replaced by one
  catalogued mutant, one student per mutant;
* ``blank``: the released notebooks, untouched;
* ``deleted-test-cell``: correct notebooks with their first test cell deleted;
* ``corrupt-file``: one notebook that is not valid JSON (the rest correct);
* ``foreign-notebook``: another assignment's notebook submitted in place of one;
* ``unknown-assignment``: a folder for an assignment the course does not have.
"""
from __future__ import annotations

import ast
import inspect
import re
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .checks import all_specs
from .course import ROOT, Course, load_course

DEMO_ASSIGNMENTS = ("weighted-sums", "softmax")
MARKER = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")


@dataclass(frozen=True)
class MistakeStudent:
    student: str
    assignment: str
    notebook: str
    kernel: str  # dotted kernel name that was replaced
    mutant_name: str


def _strip_markers(src: str) -> str:
    return "\n".join(line for line in src.splitlines() if not MARKER.match(line))


def completed(assignment: str, tier: str, root: Path = ROOT):
    """The released notebook with every solution cell filled in from the source notebook."""
    release = nbformat.read(root / "exercises" / assignment / f"{tier}.ipynb", as_version=4)
    source = nbformat.read(root / "solutions" / assignment / f"{tier}.ipynb", as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
               if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    for c in release.cells:
        meta = c.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id") in answers:
            c.source = _strip_markers(answers[meta["grade_id"]])
    return release


def mutant_source(mutant, name: str) -> str:
    """A mutant's source as a plain function called ``name`` (decorator removed)."""
    src = textwrap.dedent(inspect.getsource(mutant.fn))
    node = next(n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef))
    lines = src.splitlines()[node.lineno - 1:node.end_lineno]
    lines[0] = lines[0].replace(f"def {mutant.fn.__name__}(", f"def {name}(", 1)
    return "\n".join(lines)


def with_mutant(nb, kernel: str, mutant) -> bool:
    """Replace ``kernel``'s function in the solution cell that holds it; True if found."""
    from .build import _kernel

    fn_name = kernel.rpartition(".")[2]
    for c in nb.cells:
        kernels = c.get("metadata", {}).get("grader", {}).get("kernels", [])
        if kernel in kernels:
            parts = [mutant_source(mutant, fn_name) if k == kernel else
                     _strip_markers(inspect.getsource(_kernel(k))) for k in kernels]
            c.source = "\n\n\n".join(parts)
            return True
    return False


def make_class(dest: Path, course: Course, assignments=DEMO_ASSIGNMENTS, root: Path = ROOT) -> list[MistakeStudent]:
    """Write the sample class into ``dest`` (nbgrader's submitted layout).

    Returns the mistake students, so callers (and tests) know what each should lose.
    """
    if dest.exists():
        shutil.rmtree(dest)
    notebooks = [(a, t) for a, t in course.notebooks() if a in assignments]

    def put(student, a, t, nb_or_text):
        path = dest / student / a / f"{t}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(nb_or_text, str):
            path.write_text(nb_or_text)
        else:
            nbformat.write(nb_or_text, path)

    for a, t in notebooks:
        put("correct", a, t, completed(a, t, root))
        put("blank", a, t, nbformat.read(root / "exercises" / a / f"{t}.ipynb", as_version=4))
        nb = completed(a, t, root)
        first_test = next(i for i, c in enumerate(nb.cells) if c.get("metadata", {}).get("nbgrader", {}).get("grade")
                          and not c.metadata["nbgrader"].get("solution"))
        del nb.cells[first_test]
        put("deleted-test-cell", a, t, nb)
        if (a, t) == notebooks[-1]:
            put("corrupt-file", a, t, nbformat.writes(completed(a, t, root))[:200])
        else:
            put("corrupt-file", a, t, completed(a, t, root))
    a0, t0 = notebooks[0]
    a1, t1 = notebooks[-1]
    put("foreign-notebook", a1, t1, completed(a0, t0, root))
    put("unknown-assignment", "attention-101", "basic", completed(a0, t0, root))

    students, seen = [], set()
    for spec in all_specs().values():
        if spec.assignment not in assignments or spec.framework == "value":
            continue
        for m in spec.mutant_objects():
            key = (spec.kernel, m.key)
            if key in seen:
                continue
            seen.add(key)
            for a, t in notebooks:
                if a != spec.assignment:
                    continue
                nb = completed(a, t, root)
                if with_mutant(nb, spec.kernel, m):
                    student = f"mistake-{m.key.replace('.', '-').replace('_', '-')}"
                    put(student, a, t, nb)
                    students.append(MistakeStudent(student, a, t, spec.kernel, m.name))
                    break
    return students


def run_demo(out: Path, root: Path = ROOT, assignments=DEMO_ASSIGNMENTS, progress=None):
    """Build the course, generate the class under ``out/class`` and autograde it into ``out``
    (from scratch: earlier results and gradebook are removed first)."""
    from .build import build
    from .grading.pipeline import autograde

    build(root)
    course = load_course(root / "course.yml")
    make_class(out / "class", course, assignments, root)
    for stale in ("results", "gradebook.db", "autograded", "feedback"):
        p = out / stale
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    return autograde(out / "class", out, root=root, progress=progress)
