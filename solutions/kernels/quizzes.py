"""Right answers of the quiz notebooks, read from the quiz bank (``quizzes/<topic>.yml``).

The bank is the one source of truth: ``quizzes.softmax__why_max`` is the right value of
question ``softmax.why-max`` (its option letter, or its number), looked up on access.
"""
from __future__ import annotations


def __getattr__(name: str):
    """The right value of the choice/numeric question whose identifier is ``name``."""
    from grader.selfstudy.bank import questions

    for q in questions():
        if q.ident == name and q.kind != "open":
            return q.right_value()
    raise AttributeError(f"no choice or numeric quiz question with identifier {name!r}")
