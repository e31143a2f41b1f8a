"""Self-study: progress, progressive hints, solution(), and ``grader check NOTEBOOK``.

``grader check`` runs over every notebook that course.yml lists (its tiers and the quiz
notebook built from each topic's bank): the solved source notebook must pass (exit 0) and a
broken copy, with every solution stubbed out and the first exercise replaced by one of its
catalogued mistakes, must fail (exit 1) with "not attempted" told apart from "wrong" and
the mistake diagnosed by name.  Training notebooks (60-90 s each) only get the broken run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat
import pytest
from typer.testing import CliRunner

from grader.checks import CheckFailed, check, get
from grader.cli import app
from grader.course import ROOT, load_course
from grader.grading.checkcalls import parse_check_calls
from grader.selfstudy import hint, model_answer, progress, solution
from grader.selfstudy.nbcheck import check_notebooks


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _stable(x, axis=-1):
    import numpy as np

    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _stub(x, axis=-1):
    raise NotImplementedError()


# ---------------------------------------------------------------- progress, hint, solution

def test_check_records_attempts_and_passes(home):
    from solutions.mutants.softmax import no_max_subtraction

    with pytest.raises(CheckFailed, match="NOT ATTEMPTED"):
        check("softmax.stable", _stub)
    with pytest.raises(CheckFailed, match="Diagnosis: your output matches softmax without max-subtraction"):
        check("softmax.stable", no_max_subtraction.fn)
    check("softmax.stable", _stable, quiet=True)
    e = progress.load()["exercises"]["softmax.stable"]
    assert e["attempts"] == 2, "a not-attempted check is not an attempt"
    assert e["passed"] is True and e["last"] == "passed"
    with pytest.raises(CheckFailed):
        check("softmax.stable", no_max_subtraction.fn)
    e = progress.load()["exercises"]["softmax.stable"]
    assert e["attempts"] == 3 and e["passed"] is True and e["last"] == "failed"


def test_hints_are_progressive_and_saved(capsys, home):
    hints = get("softmax.stable").hints
    for i in range(len(hints) + 1):
        hint("softmax.stable")
    out = capsys.readouterr().out.splitlines()
    assert [l.split(":", 1)[0] for l in out] == [f"Hint {min(i, len(hints))}/{len(hints)} for softmax.stable"
                                                 for i in range(1, len(hints) + 2)]
    assert out[0].endswith(hints[0]) and out[-1].endswith(hints[-1])
    assert progress.hints_used("softmax.stable") == len(hints)
    assert json.loads((home / "progress.json").read_text())["exercises"]["softmax.stable"]["hints"] == len(hints)


def test_solution_shows_the_reference_or_says_it_is_the_instructors(capsys, monkeypatch):
    solution("softmax.stable")
    assert "def softmax(x, axis=-1):" in capsys.readouterr().out
    solution("softmax.quiz-why-max")
    assert capsys.readouterr().out.strip() == "why_subtract_max = 'a'"
    spec = get("softmax.stable")

    def missing():
        raise ImportError("No module named 'solutions'")

    monkeypatch.setattr(spec, "reference", missing)
    solution("softmax.stable")
    assert "instructor's" in capsys.readouterr().out


def test_model_answer_prints_key_points(capsys):
    model_answer("softmax.cross-entropy")
    out = capsys.readouterr().out
    assert "Model answer" in out and "1. " in out


def test_quiz_answer_wrong_option_is_explained():
    with pytest.raises(CheckFailed) as e:
        check("softmax.quiz-why-max", "b")
    assert "option 'b' is not the answer" in str(e.value)
    assert 'Diagnosis: your output matches option (b) "It makes the output sum to one."' in str(e.value)
    check("multi-head-attention.quiz-param-count", 1050624.0, quiet=True)  # float or int both fine
    with pytest.raises(CheckFailed, match="four bias vectors"):
        check("multi-head-attention.quiz-param-count", 1048576)


def test_progress_command_shows_a_table_per_topic_and_tier(home):
    check("softmax.stable", _stable, quiet=True)
    hint("softmax.stable")
    progress.record_answer("vqa.regions", right=False)
    r = CliRunner().invoke(app, ["progress", "--json"])
    assert r.exit_code == 0, r.output
    rows = {(x["topic"], x["tier"]): x for x in json.loads(r.output)}
    assert rows[("softmax", "basic")] == {"topic": "softmax", "tier": "basic", "exercises": 1, "passed": 1,
                                          "attempts": 1, "hints": 1}
    assert rows[("vqa", "quiz bank")]["passed"] == 0 and rows[("vqa", "quiz bank")]["attempts"] == 1
    r = CliRunner().invoke(app, ["progress"], env={"COLUMNS": "200"})
    assert "softmax" in r.output and "basic" in r.output and "1/1" in r.output


def test_progress_survives_a_corrupt_file(home):
    home.mkdir(parents=True)
    (home / "progress.json").write_text("{not json")
    check("softmax.stable", _stable, quiet=True)
    assert progress.load()["exercises"]["softmax.stable"]["passed"]


# ---------------------------------------------------------------- grader check, every notebook

def _course_notebooks() -> list[tuple[str, str]]:
    """(assignment, notebook) pairs from course.yml: its tiers, and the quiz notebook built
    from each assignment's quiz bank."""
    course = load_course()
    wanted = set(course.notebooks()) | {(a.id, "quiz") for a in course.assignments if a.quiz}
    return [(a.id, t) for a in course.assignments for t in ("basic", "intermediate", "advanced", "quiz")
            if (a.id, t) in wanted]


def _notebooks():
    return [pytest.param(a, t, id=f"{a}/{t}") for a, t in _course_notebooks() if t != "quiz"]


def _test_cells(nb):
    for i, c in enumerate(nb.cells):
        meta = c.get("metadata", {}).get("nbgrader", {})
        if c.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            yield i, parse_check_calls(c.source)


def _source(assignment, tier):
    path = ROOT / "solutions" / assignment / f"{tier}.ipynb"
    if not path.exists():
        pytest.skip(f"{path.relative_to(ROOT)} is listed in course.yml but not written yet")
    return path


def _is_training(nb) -> bool:
    return any(get(c.spec_id).judge is not None and get(c.spec_id).framework != "value"
               for _, calls in _test_cells(nb) for c in calls)


def _broken_copy(src, dst):
    """Stub every solution (as nbgrader does for students); bind the first exercise's entry to
    its first catalogued mistake instead.  Returns (spec id, mutant) or (None, None)."""
    from nbformat.v4 import new_code_cell
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    nb = nbformat.read(src, as_version=4)
    nb, _ = ClearSolutions().preprocess(nb, {})
    nb, _ = ClearHiddenTests().preprocess(nb, {})
    first, calls = next(_test_cells(nb))
    s = get(calls[0].spec_id)
    injected = None
    if s.mutants and (s.judge is None or s.framework == "value"):
        module, _, name = s.mutants[0].rpartition(".")
        nb.cells.insert(first, new_code_cell(f"from solutions.mutants.{module} import {name} as {calls[0].entry}"))
        injected = s.mutant_objects()[0]
    nbformat.write(nb, dst)
    return s.id, injected


@pytest.mark.slow
@pytest.mark.parametrize("assignment,tier", _notebooks())
def test_grader_check_passes_solved_and_fails_broken_notebook(assignment, tier, tmp_path):
    path = _source(assignment, tier)
    nb = nbformat.read(path, as_version=4)
    training = _is_training(nb)  # 60-90 s to train: only the broken copy is run here
    broken = tmp_path / f"{tier}.ipynb"
    first, mistake = _broken_copy(path, broken)
    # one kernel for both runs (namespace reset in between): the kernel start and imports once
    runs = check_notebooks([broken] if training else [path, broken], seed=0)
    bad = runs[-1]
    if not training:
        ok = runs[0]
        expected = {c.spec_id for _, calls in _test_cells(nb) for c in calls}
        assert {v.spec_id for v in ok.verdicts} == expected
        assert ok.passed, "\n".join(v.report for v in ok.verdicts if not v.passed)
    assert not bad.passed
    statuses = {v.spec_id: v.status for v in bad.verdicts}
    if mistake is not None:
        v = next(v for v in bad.verdicts if v.spec_id == first)
        assert v.status == "failed" and f"matches {mistake.name}" in v.report, v.report
        statuses.pop(first)
    assert set(statuses.values()) <= {"not attempted"}, statuses


@pytest.mark.slow
def test_grader_check_passes_solved_and_fails_broken_quiz_notebooks(tmp_path):
    """Every quiz notebook, solved and broken, in one kernel (they only import NumPy,
    matplotlib and scikit-learn, and change no module state)."""
    quizzes = [a for a, t in _course_notebooks() if t == "quiz"]
    paths, broken = [], []
    for a in quizzes:
        path = _source(a, "quiz")
        dst = tmp_path / a / "quiz.ipynb"
        dst.parent.mkdir()
        broken.append((dst, *_broken_copy(path, dst)))
        paths += [path, dst]
    runs = check_notebooks(paths, seed=0)
    for a, ok, bad, (dst, first, mistake) in zip(quizzes, runs[::2], runs[1::2], broken):
        assert ok.passed and ok.verdicts, f"{a}: " + "\n".join(v.report for v in ok.verdicts if not v.passed)
        assert not ok.cell_errors, f"{a}: {ok.cell_errors}"
        assert len(ok.manual) == 1, f"{a}: one open question per quiz notebook"
        v = bad.verdicts[0]
        assert v.spec_id == first and v.status == "failed" and f"matches {mistake.name}" in v.report, v.report
        assert {w.status for w in bad.verdicts[1:]} == {"not attempted"}


def _cli_check(path):
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "grader", "check", str(path), "--seed", "0"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


@pytest.mark.slow
def test_grader_check_command_exits_0_when_solved():
    ok = _cli_check(ROOT / "solutions" / "softmax" / "basic.ipynb")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "PASSED softmax.stable" in ok.stdout and "FAILED" not in ok.stdout


@pytest.mark.slow
def test_grader_check_command_exits_1_and_explains_when_wrong(tmp_path):
    first, mistake = _broken_copy(ROOT / "solutions" / "softmax" / "quiz.ipynb", tmp_path / "quiz.ipynb")
    bad = _cli_check(tmp_path / "quiz.ipynb")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"FAILED {first}" in bad.stdout and f"matches {mistake.name}" in bad.stdout
    assert "NOT ATTEMPTED" in bad.stdout and "MANUAL quiz-cross-entropy" in bad.stdout


def test_grader_check_rejects_a_missing_notebook(tmp_path):
    r = CliRunner().invoke(app, ["check", str(tmp_path / "nope.ipynb")])
    assert r.exit_code == 2
