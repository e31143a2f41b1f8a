"""``course.yml``: the course as data, validated by a pydantic schema on load.

A malformed file raises :class:`CourseError` with one message per problem, each naming the
key path and what was expected (``assignments[1].notebooks.basic.points: expected a
positive number, got 'two'``), never a traceback.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Tier = Literal["basic", "intermediate", "advanced"]
NotebookId = Literal["basic", "intermediate", "advanced", "quiz"]  # tiers, plus the topic quiz
ROOT = Path(__file__).resolve().parent.parent
COURSE_FILE = ROOT / "course.yml"


class CourseError(ValueError):
    """``course.yml`` is missing or does not follow the schema."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NotebookSpec(_Strict):
    points: float = Field(gt=0, description="total points of the notebook's autograded tests")


class Assignment(_Strict):
    id: str
    title: str
    prerequisites: list[str] = []
    goals: list[str] = Field(min_length=1)
    notebooks: dict[NotebookId, NotebookSpec] = Field(min_length=1)
    quiz: str | None = None  # the topic's quiz bank (YAML), relative to the course root

    @field_validator("id")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9-]*", v):
            raise ValueError("expected a lower-case slug like 'weighted-sums'")
        return v


class Course(_Strict):
    id: str
    title: str
    tiers: list[Tier]
    assignments: list[Assignment] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> "Course":
        seen: set[str] = set()
        for a in self.assignments:
            if a.id in seen:
                raise ValueError(f"assignment id {a.id!r} appears twice")
            for p in a.prerequisites:
                if p not in seen:
                    raise ValueError(f"assignment {a.id!r}: prerequisite {p!r} must be an earlier assignment")
            seen.add(a.id)
        return self

    def assignment(self, assignment_id: str) -> Assignment:
        for a in self.assignments:
            if a.id == assignment_id:
                return a
        raise KeyError(f"unknown assignment {assignment_id!r}; the course has "
                       f"{', '.join(a.id for a in self.assignments)}")

    def notebooks(self) -> list[tuple[str, str]]:
        """Every (assignment_id, notebook_id) in course order: the tiers, then the quiz."""
        return [(a.id, t) for a in self.assignments for t in [*self.tiers, "quiz"] if t in a.notebooks]


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load_course(path: str | Path = COURSE_FILE) -> Course:
    """Load and validate ``course.yml``.

    Raises:
        CourseError: file missing, not YAML, or not matching the schema; the message lists
            every problem with its key path.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise CourseError(f"{path}: file not found") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise CourseError(f"{path}: not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise CourseError(f"{path}: expected a mapping with keys id, title, tiers, assignments")
    try:
        return Course.model_validate(data)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            got = err.get("input")
            got_s = "" if err["type"] == "missing" else f", got {got!r}"[:80]
            lines.append(f"  {_loc(err['loc'])}: {err['msg']}{got_s}")
        raise CourseError(f"{path}: {len(lines)} problem(s)\n" + "\n".join(lines)) from None
