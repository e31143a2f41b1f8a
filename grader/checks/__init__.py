"""The check library: one spec per exercise, run against a learner's function.

Test cells in the notebooks call :func:`check` with a spec id and the learner's function::

    check("softmax.stable", softmax)

In the learner's own kernel this is the self-check.  The trusted grader never runs that
line; it parses it, and evaluates the same spec outside the learner's process.
"""
from __future__ import annotations

import inspect
import os
from typing import Callable

from .compare import compare, same, to_numpy
from .model import Case, CaseContext, Mutant, Spec, case, mutant
from .registry import all_specs, get, spec
from .run import CheckResult, invoke, run_spec

__all__ = ["check", "spec", "case", "mutant", "get", "all_specs", "run_spec", "compare",
           "same", "to_numpy", "invoke", "Case", "CaseContext", "Spec", "Mutant",
           "CheckResult", "CheckFailed"]


class CheckFailed(AssertionError):
    """A check did not pass; the message says what differed and which mistake it matches."""


def check(spec_id: str, fn: Callable | None = None, *, hidden: bool = False, seed: int | None = None,
          quiet: bool = False) -> CheckResult:
    """Check the learner's ``fn`` against exercise ``spec_id`` and say what is wrong.

    Args:
        spec_id: e.g. ``"softmax.stable"`` (see ``grader.checks.all_specs()``).
        fn: the learner's function (or value); by default the global named ``spec.entry``
            in the caller's namespace (the notebook).
        hidden: also run the hidden cases the grader uses.
        seed: the random cases' seed; a fresh one each call by default (printed on failure).
        quiet: do not print the verdict when the check passes.

    Returns:
        The :class:`CheckResult` when every case passes.

    Raises:
        CheckFailed: (an AssertionError) with a readable report when a case fails or the
            function is not attempted yet.
        KeyError: when ``spec_id`` names no exercise.
    """
    s = get(spec_id)
    if fn is None:
        caller = inspect.currentframe().f_back.f_globals
        if s.entry not in caller:
            raise CheckFailed(f"NOT ATTEMPTED {spec_id}: define `{s.entry}` first (run its cell).")
        fn = caller[s.entry]
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little")
    result = run_spec(s, lambda c: invoke(fn, s.framework, c.args, c.kwargs), seed=seed,
                      hidden=hidden)
    _record(result)
    if not result.passed:
        raise CheckFailed(result.report())
    if not quiet:
        print(result.summary())
    return result


def _record(result: CheckResult) -> None:
    """Save self-study progress; never lets a progress problem break a check."""
    try:
        from grader.selfstudy.progress import record
    except ImportError:
        return
    try:
        record(result)
    except Exception:
        pass
