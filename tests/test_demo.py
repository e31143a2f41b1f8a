"""The real autograde path, end to end: every source notebook earns full marks, and the
demo class gets exactly its expected scores and diagnoses."""
import csv

import nbformat
import pytest

from grader.checks import get
from grader.course import ROOT, load_course
from grader.demo import DEMO_ASSIGNMENTS, completed, make_class
from grader.grading.checkcalls import parse_check_calls
from grader.grading.pipeline import autograde

COURSE = load_course()


def test_specs_of(assignment, tier):
    """{grade_id: [spec ids]} of a source notebook's test cells."""
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{tier}.ipynb", as_version=4)
    out = {}
    for c in nb.cells:
        m = c.get("metadata", {}).get("nbgrader", {})
        if m.get("grade") and not m.get("solution") and c.cell_type == "code":
            out[m["grade_id"]] = sorted({k.spec_id for k in parse_check_calls(c.source)})
    return out


test_specs_of.__test__ = False  # a helper, not a test


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    mistakes = make_class(root / "class", COURSE, DEMO_ASSIGNMENTS)
    for a, t in COURSE.notebooks():  # one student with every notebook of the course solved
        p = root / "class" / "solved-everything" / a / f"{t}.ipynb"
        p.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(completed(a, t), p)
    report = autograde(root / "class", root / "out")
    with open(root / "out" / "grades.csv") as f:
        header = f.readline().strip().split(",")
        f.seek(0)
        rows = list(csv.DictReader(f))
    return report, rows, header, mistakes, root / "out"


def _rows(rows, student, assignment=None, notebook=None):
    return [r for r in rows if r["student_id"] == student and (assignment is None or r["assignment_id"] == assignment)
            and (notebook is None or r["notebook_id"] == notebook)]


def test_csv_header(demo):
    assert demo[2][:6] == ["student_id", "assignment_id", "notebook_id", "grade_id", "score", "max_score"]


@pytest.mark.parametrize("assignment,tier", COURSE.notebooks())
def test_every_source_notebook_earns_full_marks(demo, assignment, tier):
    report, rows, *_ = demo
    got = _rows(rows, "solved-everything", assignment, tier)
    assert set(r["grade_id"] for r in got) == set(test_specs_of(assignment, tier)), "every test cell has a row"
    for r in got:
        assert float(r["score"]) == float(r["max_score"]) > 0, r
        assert r["flags"] == "", f"false flag on a reference solution: {r['flags']}"
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{tier}.ipynb", as_version=4)
    autograded = sum(c.metadata["nbgrader"]["points"] for c in nb.cells if c.cell_type == "code"
                     and c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution"))
    assert sum(float(r["max_score"]) for r in got) == autograded


def test_correct_student_full_marks_and_blank_zero(demo):
    _, rows, *_ = demo
    assert all(float(r["score"]) == float(r["max_score"]) for r in _rows(rows, "correct"))
    blank = _rows(rows, "blank")
    assert blank and all(float(r["score"]) == 0 for r in blank)
    assert {r["status"] for r in blank} == {"not attempted"}


def test_each_mistake_loses_its_exercise_and_is_diagnosed_by_name(demo):
    _, rows, _, mistakes, _ = demo
    assert mistakes, "the demo class has one student per catalogued mistake"
    for m in mistakes:
        specs = test_specs_of(m.assignment, m.notebook)
        for r in _rows(rows, m.student, m.assignment, m.notebook):
            hit = any(get(s).kernel == m.kernel for s in specs[r["grade_id"]])
            if hit:
                assert float(r["score"]) == 0, (m, r)
            else:
                assert float(r["score"]) == float(r["max_score"]), (m, r)
        diagnosed = " | ".join(r["diagnosis"] for r in _rows(rows, m.student))
        assert m.mutant_name in diagnosed, (m.student, diagnosed)


def test_bad_submissions_are_reported_and_the_rest_graded(demo):
    report, rows, *_ = demo
    reasons = {p.student: p.reason for p in report.problems}
    assert "invalid JSON" in reasons["corrupt-file"]
    assert "foreign notebook" in reasons["foreign-notebook"]
    assert "unknown assignment" in reasons["unknown-assignment"]
    corrupt = _rows(rows, "corrupt-file")
    bad = [r for r in corrupt if r["status"] == "not graded"]
    assert bad and all(float(r["score"]) == 0 and "invalid JSON" in r["message"] for r in bad)
    assert all(float(r["score"]) == float(r["max_score"]) for r in corrupt if r["status"] != "not graded")
    deleted = _rows(rows, "deleted-test-cell")
    assert all(float(r["score"]) == float(r["max_score"]) for r in deleted)
    assert any("deleted test cell" in r["flags"] for r in deleted)
    assert not report.failed


def test_feedback_written_without_hidden_tests(demo):
    out = demo[4]
    pages = list((out / "feedback").rglob("*.html"))
    assert pages
    for p in pages:
        text = p.read_text()
        assert "BEGIN HIDDEN TESTS" not in text and "hidden=True" not in text, p
    assert (out / "feedback" / "correct" / "softmax" / "basic.html").exists()


def test_rerun_regrades_nothing_and_loses_nothing(demo, tmp_path):
    report, rows, *_ = demo
    out = report.out
    again = autograde(out / ".." / "class", out, feedback=False)
    assert not again.graded and again.skipped
    before = {(r["student_id"], r["assignment_id"], r["notebook_id"], r["grade_id"]): float(r["score"]) for r in rows}
    after = {(r["student_id"], r["assignment_id"], r["notebook_id"], r["grade_id"]): float(r["score"])
             for r in again.rows}
    assert before == after
