"""course.yml is validated on load; a bad file gets one clear error naming the key path."""
from pathlib import Path

import pytest
import yaml

from grader.course import COURSE_FILE, CourseError, load_course

ASSIGNMENTS = ["weighted-sums", "softmax", "dot-product-attention", "self-attention",
               "multi-head-attention", "rnn-on-images", "image-captioning", "vqa"]


def test_course_loads_with_the_assignments_in_order():
    course = load_course()
    assert [a.id for a in course.assignments] == ASSIGNMENTS
    assert course.tiers == ["basic", "intermediate", "advanced"]
    for a in course.assignments:
        assert {"basic", "intermediate", "advanced"} <= set(a.notebooks), a.id


def _write(tmp_path, data) -> Path:
    p = tmp_path / "course.yml"
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return p


@pytest.mark.parametrize("mutate,expect", [
    (lambda d: d["assignments"][1]["notebooks"]["basic"].update(points="two"),
     "assignments[1].notebooks.basic.points"),
    (lambda d: d["assignments"][0].pop("title"), "assignments[0].title: Field required"),
    (lambda d: d["assignments"][0]["notebooks"].update(expert={"points": 1}), "assignments[0].notebooks.expert"),
    (lambda d: d["assignments"][0].update(id="Weighted Sums"), "lower-case slug"),
    (lambda d: d["assignments"][0].update(prerequisites=["vqa"]), "must be an earlier assignment"),
    (lambda d: d.update(tiers="basic"), "tiers"),
    (lambda d: d["assignments"][2]["notebooks"]["basic"].update(points=-1), "greater than 0"),
])
def test_malformed_course_gets_a_clear_error(tmp_path, mutate, expect):
    data = yaml.safe_load(COURSE_FILE.read_text())
    mutate(data)
    with pytest.raises(CourseError) as e:
        load_course(_write(tmp_path, data))
    assert expect in str(e.value)
    assert "Traceback" not in str(e.value)


def test_not_yaml_and_missing_file(tmp_path):
    with pytest.raises(CourseError, match="not valid YAML at line"):
        load_course(_write(tmp_path, "id: [unclosed\n"))
    with pytest.raises(CourseError, match="file not found"):
        load_course(tmp_path / "nope.yml")


def test_cli_reports_a_bad_course_without_traceback(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import grader.build as b
    from grader.cli import app

    (tmp_path / "course.yml").write_text("id: x\ntitle: y\ntiers: [basic]\nassignments: []\n")
    monkeypatch.setattr(b, "ROOT", tmp_path)
    real = b.build
    monkeypatch.setattr(b, "build", lambda **kw: real(root=tmp_path, **kw))
    r = CliRunner().invoke(app, ["build"])
    assert r.exit_code == 2
    assert "assignments" in r.output and "Traceback" not in r.output
