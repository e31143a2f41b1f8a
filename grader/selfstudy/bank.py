"""The interview quiz bank: one YAML file per assignment, validated by a pydantic schema.

``course.yml`` names each assignment's bank (``quiz: quizzes/<id>.yml``).  A bank file is
data, never code::

    topic: softmax
    title: Softmax, stable and streaming
    intro: |                      # markdown (LaTeX allowed) opening the quiz notebook
      ...
    questions:
      - id: softmax.why-max       # "<topic>.<slug>", unique in the course
        tier: basic               # basic | intermediate | advanced
        kind: choice              # choice | numeric | open
        prompt: Why do we subtract ...?
        code: |                   # optional snippet ("find the bug" questions)
        options:                  # choice: every option explains itself
          - {text: ..., correct: true, why: ...}
        multi: false              # choice: several correct options allowed only when true
        answer: 1050624           # numeric: the value, with an absolute tolerance
        tolerance: 0
        distractors: [{value: 1048576, why: "forgot the biases"}]
        recompute: {formula: mha_params, E: 512, H: 8, bias: true}
        model_answer: ...         # open: a strong answer and the points it hits
        key_points: [...]
        explanation: ...          # shown after answering (choice/numeric)
        hints: [gentle, closer]
        notebook: entry_name      # optional: asked in the quiz notebook as this variable

A malformed bank raises :class:`BankError` listing every problem with its key path, like
``quizzes/softmax.yml: questions[3].options: exactly one option must be correct``.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from grader.course import ROOT, load_course

Kind = Literal["choice", "numeric", "open"]
Tier = Literal["basic", "intermediate", "advanced"]
TIERS: tuple[str, ...] = ("basic", "intermediate", "advanced")


class BankError(ValueError):
    """A quiz bank file is missing or does not follow the schema."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Option(_Strict):
    """One option of a choice question, with why it is right or wrong."""

    text: str = Field(min_length=1)
    correct: bool = False
    why: str = Field(min_length=1, description="why this option is right or wrong")


class Distractor(_Strict):
    """A tempting wrong number for a numeric question, and the mistake that gives it."""

    value: float
    why: str = Field(min_length=1)


class Question(_Strict):
    """One quiz question (see the module docstring for the fields of each kind)."""

    id: str
    tier: Tier
    kind: Kind
    prompt: str = Field(min_length=1)
    code: str | None = None
    tags: list[str] = []
    hints: list[str] = []
    explanation: str | None = None
    notebook: str | None = None
    # choice
    options: list[Option] = []
    multi: bool = False
    # numeric
    answer: float | None = None
    tolerance: float = Field(default=0.0, ge=0)
    unit: str | None = None
    distractors: list[Distractor] = []
    recompute: dict[str, Any] | None = None
    # open
    model_answer: str | None = None
    key_points: list[str] = []

    @property
    def topic(self) -> str:
        """The assignment id, the part of ``id`` before the dot."""
        return self.id.split(".", 1)[0]

    @property
    def slug(self) -> str:
        """The part of ``id`` after the dot."""
        return self.id.split(".", 1)[1]

    @property
    def ident(self) -> str:
        """A Python identifier for this question (``softmax__why_max``)."""
        return self.id.replace(".", "__").replace("-", "_")

    @property
    def letters(self) -> str:
        """The option letters, ``"abcd"`` for four options."""
        return "abcdefghij"[: len(self.options)]

    @property
    def correct_letters(self) -> str:
        """The letters of the right options, in order."""
        return "".join(l for l, o in zip(self.letters, self.options) if o.correct)

    def right_value(self) -> Any:
        """The answer a quiz notebook expects: the letter(s) of a choice, the number of a
        numeric question (an ``int`` when it is whole).  Open questions have none."""
        if self.kind == "choice":
            return self.correct_letters
        if self.kind == "numeric":
            a = float(self.answer)
            return int(a) if a.is_integer() and abs(a) < 2**53 else a
        raise ValueError(f"{self.id}: open questions have no single right value")

    def is_right(self, value: Any) -> bool:
        """Whether ``value`` answers a choice/numeric question: letters compared as a set
        (case and spaces ignored); numbers within ``tolerance``."""
        if self.kind == "choice":
            if not isinstance(value, str):
                return False
            got = {c for c in value.lower() if c.isalpha()}
            return got == set(self.correct_letters)
        if self.kind == "numeric":
            try:
                x = float(value)
            except (TypeError, ValueError):
                return False
            return abs(x - float(self.answer)) <= self.tolerance + 1e-12 * abs(float(self.answer))
        raise ValueError(f"{self.id}: open questions are self-assessed")

    @model_validator(mode="after")
    def _by_kind(self) -> "Question":
        if not re.fullmatch(r"[a-z][a-z0-9-]*\.[a-z0-9][a-z0-9-]*", self.id):
            raise ValueError(f"id {self.id!r}: expected '<topic>.<slug>' in lower case with hyphens")
        if self.kind == "choice":
            if not 2 <= len(self.options) <= 10:
                raise ValueError("a choice question needs 2 to 10 options")
            n = sum(o.correct for o in self.options)
            if self.multi and n < 1:
                raise ValueError("a multi-select question needs at least one correct option")
            if not self.multi and n != 1:
                raise ValueError(f"exactly one option must be correct (found {n}); set multi: true for multi-select")
            if len({o.text for o in self.options}) != len(self.options):
                raise ValueError("option texts must be distinct")
        elif self.options or self.multi:
            raise ValueError(f"only choice questions have options (this one is {self.kind})")
        if self.kind == "numeric":
            if self.answer is None:
                raise ValueError("a numeric question needs an answer")
            for d in self.distractors:
                if abs(d.value - self.answer) <= self.tolerance:
                    raise ValueError(f"distractor {d.value} is within the tolerance of the answer")
        elif self.answer is not None or self.distractors or self.recompute:
            raise ValueError(f"only numeric questions have answer/distractors/recompute (this one is {self.kind})")
        if self.kind == "open":
            if not self.model_answer or len(self.key_points) < 2:
                raise ValueError("an open question needs a model_answer and at least two key_points")
        elif self.model_answer or self.key_points:
            raise ValueError(f"only open questions have model_answer/key_points (this one is {self.kind})")
        if self.notebook is not None:
            if not self.notebook.isidentifier():
                raise ValueError(f"notebook: {self.notebook!r} is not a Python identifier")
            if self.kind == "choice" and self.multi:
                raise ValueError("multi-select questions are not asked in notebooks")
            if self.kind != "open" and len(self.hints) < 2:
                raise ValueError("a notebook question needs at least two hints")
            if self.kind == "numeric" and not self.distractors:
                raise ValueError("a numeric notebook question needs at least one distractor (a common wrong answer)")
        return self


class Bank(_Strict):
    """One assignment's bank file: its intro and its questions."""

    topic: str
    title: str
    intro: str = Field(min_length=1, description="markdown that opens the quiz notebook")
    questions: list[Question] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> "Bank":
        seen, entries = set(), set()
        for q in self.questions:
            if q.topic != self.topic:
                raise ValueError(f"question {q.id!r} does not start with the topic {self.topic!r}")
            if q.id in seen:
                raise ValueError(f"question id {q.id!r} appears twice")
            seen.add(q.id)
            if q.notebook:
                if q.notebook in entries:
                    raise ValueError(f"notebook variable {q.notebook!r} is used twice")
                entries.add(q.notebook)
        return self


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load_bank(path: str | Path) -> Bank:
    """Load and validate one bank file.

    Raises:
        BankError: missing file, invalid YAML, or schema problems (one line per problem).
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise BankError(f"{path}: file not found") from None
    except yaml.YAMLError as e:
        raise BankError(f"{path}: not valid YAML: {e}") from None
    try:
        return Bank.model_validate(data)
    except ValidationError as e:
        lines = [f"  {_loc(x['loc'])}: {x['msg']}" for x in e.errors()]
        raise BankError(f"{path}: {len(lines)} problem(s)\n" + "\n".join(lines)) from None


@lru_cache(maxsize=None)
def _banks(root: str) -> dict[str, Bank]:
    course = load_course(Path(root) / "course.yml")
    out = {}
    for a in course.assignments:
        if a.quiz:
            bank = load_bank(Path(root) / a.quiz)
            if bank.topic != a.id:
                raise BankError(f"{a.quiz}: topic {bank.topic!r} should be {a.id!r}")
            out[a.id] = bank
    return out


def banks(root: Path = ROOT) -> dict[str, Bank]:
    """Every bank referenced from ``course.yml``, by assignment id, in course order."""
    return _banks(str(root))


def questions(root: Path = ROOT) -> list[Question]:
    """The whole bank in course order."""
    return [q for b in banks(root).values() for q in b.questions]


def question(qid: str, root: Path = ROOT) -> Question:
    """The question called ``qid``; KeyError when there is none."""
    for q in questions(root):
        if q.id == qid:
            return q
    raise KeyError(f"no quiz question called {qid!r}")
