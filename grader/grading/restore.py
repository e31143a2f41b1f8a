"""``RestoreTestCells``: put back autograded test cells a student deleted.

A grade must depend on the student's code, not on whether the test cell survived in
their file.  nbgrader scores a deleted test cell as missing (0 points); this sanitize stage
re-inserts the instructor's copy from the gradebook at the end of the notebook (after
every definition) and notes it, so the test runs as intended.
"""
from __future__ import annotations

from nbformat.v4 import new_code_cell
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import NbGraderPreprocessor


class RestoreTestCells(NbGraderPreprocessor):
    """Re-insert missing autograded code cells from the gradebook's source cells."""

    def preprocess(self, nb, resources):
        ids = resources["nbgrader"]
        present = {c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells}
        restored = []
        with Gradebook(ids["db_url"]) as gb:
            try:
                notebook = gb.find_notebook(ids["notebook"], ids["assignment"])
            except MissingEntry:
                return nb, resources
            for gc in sorted(notebook.grade_cells, key=lambda g: g.name):
                if gc.cell_type != "code" or gc.name in present:
                    continue
                src = gb.find_source_cell(gc.name, ids["notebook"], ids["assignment"])
                if src.cell_type != "code":
                    continue
                cell = new_code_cell(src.source, metadata={"nbgrader": {
                    "grade": True, "solution": False, "locked": True, "points": gc.max_score,
                    "grade_id": gc.name, "schema_version": 3, "checksum": src.checksum}})
                nb.cells.append(cell)
                restored.append(gc.name)
        if restored:
            nb.metadata.setdefault("grader", {})["restored_test_cells"] = restored
        return nb, resources
