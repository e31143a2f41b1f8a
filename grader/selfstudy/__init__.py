"""Self-study: the learner API, progress, and the interview quiz.

In a notebook, one call gives one clear answer (Kaggle learntools style)::

    check("softmax.stable")      # runs the checks on your `softmax` (grader.checks.check)
    hint("softmax.stable")       # the next progressive hint
    solution("softmax.stable")   # the reference, where the solutions are installed
"""
from __future__ import annotations

from grader.checks import check  # re-exported: the learner's third call

__all__ = ["check", "hint", "solution"]

_shown: dict[str, int] = {}


def hint(spec_id: str) -> None:
    """Print the next hint of exercise ``spec_id`` (1, 2, 3, ... then the last again)."""
    from grader.checks import get

    s = get(spec_id)
    if not s.hints:
        print(f"No hints for {spec_id}.")
        return
    n = min(_shown.get(spec_id, 0), len(s.hints) - 1)
    _shown[spec_id] = n + 1
    print(f"Hint {n + 1}/{len(s.hints)} for {spec_id}: {s.hints[n]}")


def solution(spec_id: str) -> None:
    """Print the reference implementation of ``spec_id`` where the solutions are installed;
    otherwise say that the reference is the instructor's."""
    import inspect

    from grader.checks import get

    s = get(spec_id)
    try:
        ref = s.reference()
    except ImportError:
        print(f"The reference for {spec_id} is the instructor's and is not installed here.")
        return
    print(inspect.getsource(ref) if callable(ref) else repr(ref))
