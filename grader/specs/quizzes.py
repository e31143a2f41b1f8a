"""Value specs of the quiz notebooks, generated from the quiz bank.

Every choice or numeric question with a ``notebook:`` entry in ``quizzes/<topic>.yml``
becomes spec ``"<topic>.quiz-<slug>"``: the learner's variable (the entry) must hold the
option letter or the number; the wrong options and listed distractors are the mutants, so a
wrong answer is diagnosed with the bank's explanation of why it is wrong.
"""
from __future__ import annotations

import numpy as np

from grader.checks import case, spec
from grader.selfstudy.bank import Question, questions


def spec_id(q: Question) -> str:
    """The spec id of a notebook question: ``"<topic>.quiz-<slug>"``."""
    return f"{q.topic}.quiz-{q.slug}"


def _judge(q: Question):
    """A judge accepting the right letter (any case, spaces ignored) or a number within the
    tolerance; otherwise it says what kind of answer was expected or that it is wrong."""
    def judge(c, got) -> str | None:
        if isinstance(got, np.ndarray) and got.shape == () and got.dtype.kind in "U":
            got = str(got)
        if q.kind == "choice":
            if not isinstance(got, str):
                return f"expected an option letter as a string (one of {', '.join(repr(l) for l in q.letters)}), got {got!r}"
            letters = {ch for ch in got.lower() if ch.isalpha()}
            if len(letters) != 1 or not letters <= set(q.letters):
                return f"expected exactly one of {', '.join(repr(l) for l in q.letters)}, got {got!r}"
            return None if q.is_right(got) else f"option {got.strip()!r} is not the answer"
        try:
            x = float(got)
        except (TypeError, ValueError):
            return f"expected a number, got {got!r}"
        if not np.isfinite(x):
            return f"expected a finite number, got {x}"
        if q.is_right(x):
            return None
        within = f" (within {q.tolerance:g})" if q.tolerance else " (exactly)"
        return f"{x:g} is not the answer{within}"
    return judge


def _cases_for(q: Question):
    def cases(t):
        yield case(f"your answer `{q.notebook}`")
    cases.__doc__ = f"Quiz answer to {q.id} ({q.kind}): {q.prompt.strip()[:100]}"
    return cases


def _mutant_names(q: Question) -> list[str]:
    if q.kind == "choice":
        return [f"quizzes.{q.ident}__{l}" for l, o in zip(q.letters, q.options) if not o.correct]
    return [f"quizzes.{q.ident}__d{i}" for i in range(len(q.distractors))]


for _q in questions():
    if _q.notebook and _q.kind != "open":
        spec(spec_id(_q), entry=_q.notebook, kernel=f"quizzes.{_q.ident}", framework="value",
             judge=_judge(_q), mutants=_mutant_names(_q), hints=list(_q.hints))(_cases_for(_q))
