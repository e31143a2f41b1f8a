"""Self-study: the learner API, progress, and the interview quiz.

In a notebook, one call gives one clear answer (Kaggle learntools style)::

    check("softmax.stable")      # runs the checks on your `softmax` (grader.checks.check)
    hint("softmax.stable")       # the next progressive hint: 1, 2, 3, ...
    solution("softmax.stable")   # the reference, where the solutions are installed

Attempts, passes and hints used are saved per exercise in ``$GRADER_HOME`` (see
:mod:`grader.selfstudy.progress`); ``grader progress`` prints them.
"""
from __future__ import annotations

from grader.checks import check  # re-exported: the learner's third call

__all__ = ["check", "hint", "solution", "model_answer"]

_shown: dict[str, int] = {}  # fallback counter when progress cannot be saved


def hint(spec_id: str) -> None:
    """Print the next hint of exercise ``spec_id``.

    Hints are progressive: the first call shows hint 1, the next hint 2, and so on; after
    the last one, the last is shown again.  The count is saved with the learner's progress,
    so it survives a kernel restart.

    Raises:
        KeyError: ``spec_id`` names no exercise (the message lists the known ids).
    """
    from grader.checks import get

    from . import progress

    s = get(spec_id)
    if not s.hints:
        print(f"No hints for {spec_id}.")
        return
    try:
        n = progress.use_hint(spec_id, len(s.hints))
    except OSError:
        n = min(_shown.get(spec_id, 0), len(s.hints) - 1)
        _shown[spec_id] = n + 1
    print(f"Hint {n + 1}/{len(s.hints)} for {spec_id}: {s.hints[n]}")


def solution(spec_id: str) -> None:
    """Print the reference for ``spec_id`` where the solutions are installed (the kernel's
    source, or the right value of a quiz answer); in a student release, say that the
    reference is the instructor's.

    Raises:
        KeyError: ``spec_id`` names no exercise.
    """
    import inspect

    from grader.checks import get

    s = get(spec_id)
    try:
        ref = s.reference()
    except ImportError:
        print(f"The reference for {spec_id} is the instructor's and is not installed here. "
              f"Try hint({spec_id!r}) for a nudge.")
        return
    if callable(ref):
        try:
            print(inspect.getsource(ref))
            return
        except (OSError, TypeError):
            pass
    print(f"{s.entry} = {ref!r}")


def model_answer(question_id: str) -> None:
    """Print the model answer and key points of open quiz question ``question_id`` (e.g.
    ``"softmax.cross-entropy"``), to compare with your own answer after writing it.

    Raises:
        KeyError: no such question in the quiz bank.
    """
    from .bank import question

    q = question(question_id)
    if q.kind != "open":
        print(f"{question_id} is a {q.kind} question; check your answer with check().")
        return
    print("Model answer:\n  " + " ".join(q.model_answer.split()))
    print("Key points a strong answer hits:")
    for i, p in enumerate(q.key_points, 1):
        print(f"  {i}. {p}")
