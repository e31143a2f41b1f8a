"""Helpers for writing instructor source notebooks in nbgrader format.

The ``.ipynb`` files under ``solutions/`` are the sources; these helpers only make their
cells with the right metadata, so a topic author writes::

    nb = notebook([
        md("# Softmax ..."),
        setup("import numpy as np"),
        solution("softmax-impl", kernels=["softmax.softmax"]),
        test("softmax.stable", entry="softmax", points=2),
    ])
    save(nb, "solutions/softmax/basic.ipynb")

and ``grader build`` fills the solution cell from the kernel.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

SETUP = "from grader.checks import check\nfrom grader.selfstudy import hint, solution\n"


def _nbgrader(**kw) -> dict:
    return {"nbgrader": {"schema_version": 3, **kw}}


def md(text: str):
    """A plain markdown cell (explanations, maths in LaTeX)."""
    return new_markdown_cell(text.strip("\n"))


def code(text: str):
    """A plain, ungraded code cell (demonstrations, drawings)."""
    return new_code_cell(text.strip("\n"))


def setup(text: str = "", grade_id: str = "setup"):
    """The locked first code cell: imports, plus the check library."""
    return new_code_cell((text.strip("\n") + "\n" + SETUP).strip("\n"),
                         metadata=_nbgrader(grade=False, solution=False, locked=True, grade_id=grade_id))


def solution(grade_id: str, kernels: list[str] | None = None, source: str = ""):
    """A learner-editable solution cell.

    With ``kernels`` (dotted names under ``solutions.kernels``), ``grader build`` writes the
    cell from the kernels' source; otherwise ``source`` must hold its own
    ``### BEGIN SOLUTION`` / ``### END SOLUTION`` region.
    """
    meta = _nbgrader(grade=False, solution=True, locked=False, grade_id=grade_id)
    if kernels:
        meta["grader"] = {"kernels": list(kernels)}
    return new_code_cell(source.strip("\n"), metadata=meta)


def test(spec_id: str, entry: str, points: float, grade_id: str | None = None):
    """A locked, autograded test cell: a visible self-check plus the hidden cases."""
    src = (f'check("{spec_id}", {entry})\n### BEGIN HIDDEN TESTS\n'
           f'check("{spec_id}", {entry}, hidden=True)\n### END HIDDEN TESTS')
    return new_code_cell(src, metadata=_nbgrader(grade=True, solution=False, locked=True,
                                                 points=points,
                                                 grade_id=grade_id or spec_id.replace(".", "-")))


def written(grade_id: str, points: float, prompt: str = "YOUR ANSWER HERE"):
    """A manually graded free-text answer (graded in formgrader)."""
    return new_markdown_cell(prompt, metadata=_nbgrader(grade=True, solution=True, locked=False,
                                                        points=points, grade_id=grade_id))


def notebook(cells: list):
    """A Python 3 notebook with the given cells."""
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def save(nb, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
