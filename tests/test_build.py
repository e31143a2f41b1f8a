"""exercises/ is generated from solutions/ and committed: it must never be stale, and it
carries no outputs, solutions or hidden tests."""
import json
import shutil

import nbformat

from grader.build import build, solution_source
from grader.course import ROOT, load_course


def test_exercises_are_not_stale():
    stale = build(check_only=True)
    assert stale == [], f"run `grader build`; stale: {stale}"


def test_exercises_carry_no_solutions_hidden_tests_or_outputs():
    for a, t in load_course().notebooks():
        text = (ROOT / "exercises" / a / f"{t}.ipynb").read_text()
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "hidden=True" not in text, (a, t)
        nb = json.loads(text)
        assert not any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), (a, t)


def test_a_stale_exercise_is_caught(tmp_path):
    for name in ("course.yml", "solutions", "exercises"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copyfile)(src, tmp_path / name)
    a, t = load_course().notebooks()[0]
    path = tmp_path / "solutions" / a / f"{t}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source += "\n\nOne more sentence of explanation."
    nbformat.write(nb, path)
    assert build(root=tmp_path, check_only=True, only=[a]) == [f"exercises/{a}/{t}.ipynb"]


def test_solution_cells_are_written_from_the_kernels():
    from solutions.kernels.softmax import softmax

    src = solution_source(softmax)
    assert src.startswith("def softmax(") and "### BEGIN SOLUTION" in src and src.rstrip().endswith("### END SOLUTION")
    assert src.index('"""') < src.index("### BEGIN SOLUTION"), "the docstring stays visible to the learner"
