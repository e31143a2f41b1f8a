"""Known-wrong quiz answers, read from the quiz bank: every wrong option of a choice
question and every listed distractor of a numeric question is a mutant, named after the
answer and explained by the bank's own "why".

``quizzes.softmax__why_max__c`` is option (c) of ``softmax.why-max``;
``quizzes.multi_head_attention__param_count__d0`` is the first distractor of a numeric one.
"""
from __future__ import annotations

import copy
from functools import lru_cache

from grader.checks import Mutant


class WrongValue:
    """A wrong answer that behaves like a plain value when the checker copies it."""

    def __init__(self, value, name: str):
        self.value = value
        self.__name__ = name
        self.__module__ = __name__

    def __deepcopy__(self, memo):
        return copy.deepcopy(self.value, memo)

    def __repr__(self):
        return repr(self.value)


class ValueMutant(Mutant):
    """A :class:`Mutant` whose "output" is its wrong value (for ``framework="value"`` specs)."""

    def __deepcopy__(self, memo):
        return copy.deepcopy(self.fn.value, memo)


@lru_cache(maxsize=None)
def _build(name: str) -> ValueMutant:
    from grader.selfstudy.bank import questions

    ident, _, which = name.rpartition("__")
    for q in questions():
        if q.ident != ident:
            continue
        if q.kind == "choice" and which in q.letters:
            o = q.options[q.letters.index(which)]
            if not o.correct:
                text = o.text if len(o.text) <= 60 else o.text[:57] + "..."
                return ValueMutant(WrongValue(which, name), f'option ({which}) "{text}"', o.why)
        if q.kind == "numeric" and which.startswith("d") and which[1:].isdigit() \
                and int(which[1:]) < len(q.distractors):
            d = q.distractors[int(which[1:])]
            v = int(d.value) if float(d.value).is_integer() else d.value
            return ValueMutant(WrongValue(v, name), f"the answer {v:g}", d.why)
    raise AttributeError(f"no wrong quiz answer called {name!r}")


def __getattr__(name: str) -> ValueMutant:
    if name.startswith("__"):
        raise AttributeError(name)
    return _build(name)
