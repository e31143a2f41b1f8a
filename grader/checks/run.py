"""Running a spec against a learner's function and diagnosing the mistake.

The same :func:`run_spec` serves both the learner's in-notebook self-check (``call`` is the
learner's function itself) and the trusted grader (``call`` sends the case to a sandboxed
worker and gets plain arrays back).  Reference kernels and mutants always run here, in the
calling process.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .compare import compare, same, to_numpy
from .model import Case, Mutant, Spec


class NotAttempted(Exception):
    """The learner's function is still the stub (raises NotImplementedError)."""


@dataclass
class CaseResult:
    name: str
    passed: bool
    message: str = ""


@dataclass
class CheckResult:
    """Outcome of one spec: per-case results, the verdict and the diagnosed mistake."""

    spec_id: str
    seed: int
    status: str  # "passed" | "failed" | "not attempted"
    cases: list[CaseResult] = field(default_factory=list)
    diagnosis: Mutant | None = None
    judged: bool = False  # cases judged by a threshold (training), not compared with the reference

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def diagnosis_text(self) -> str:
        return self.diagnosis.describe() if self.diagnosis else ""

    def summary(self) -> str:
        """One line: the verdict."""
        n_ok = sum(c.passed for c in self.cases)
        if self.status == "passed":
            how = "pass their thresholds" if self.judged else "agree with the reference"
            return f"PASSED {self.spec_id}: all {len(self.cases)} cases {how}."
        if self.status == "not attempted":
            return f"NOT ATTEMPTED {self.spec_id}: the function still raises NotImplementedError."
        first = next(c for c in self.cases if not c.passed)
        return (f"FAILED {self.spec_id}: {n_ok} of {len(self.cases)} cases pass; "
                f"first failure on case '{first.name}'.")

    def report(self) -> str:
        """The verdict, then the first failing cases and the diagnosed mistake."""
        lines = [self.summary()]
        failing = [c for c in self.cases if not c.passed]
        for c in failing[:2]:
            lines.append(f"  case '{c.name}': {c.message}")
        if len(failing) > 2:
            lines.append(f"  ... and {len(failing) - 2} more failing cases")
        if self.diagnosis is not None:
            lines.append(f"  Diagnosis: your output {self.diagnosis_text}.")
        if self.status == "failed":
            lines.append(f"  (seed {self.seed}; rerun with check(..., seed={self.seed}) to reproduce)")
        return "\n".join(lines)


def _torchify(x: Any) -> Any:
    import torch

    if isinstance(x, np.ndarray):
        return torch.from_numpy(x.copy())
    if isinstance(x, tuple):
        return tuple(_torchify(v) for v in x)
    if isinstance(x, list):
        return [_torchify(v) for v in x]
    return x


def invoke(fn: Callable, framework: str, args: tuple, kwargs: dict) -> Any:
    """Call ``fn(*args, **kwargs)`` on private copies of the inputs; return NumPy outputs.

    With ``framework="torch"`` NumPy arrays are passed as ``torch.Tensor`` (same dtype)
    and tensors in the output are converted back.  Copies protect the case from
    functions that modify their inputs in place.
    """
    if framework == "value":  # the entry is the answer itself
        return to_numpy(copy.deepcopy(fn))
    args, kwargs = copy.deepcopy(args), copy.deepcopy(kwargs)
    if framework == "torch":
        args, kwargs = _torchify(args), {k: _torchify(v) for k, v in kwargs.items()}
    return to_numpy(fn(*args, **kwargs))


def _as_float64(x: Any) -> Any:
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        return x.astype(np.float64)
    if isinstance(x, tuple):
        return tuple(_as_float64(v) for v in x)
    if isinstance(x, list):
        return [_as_float64(v) for v in x]
    return x


def _outcome(fn: Callable, framework: str, c: Case) -> tuple[bool, Any]:
    """(ok, output) or (False, exception type name) for diagnosis."""
    try:
        with np.errstate(all="ignore"):
            return True, invoke(fn, framework, c.args, c.kwargs)
    except Exception as e:  # a mutant may crash where the learner's code crashes too
        return False, type(e).__name__


def run_spec(spec: Spec, call: Callable[[Case], Any], *, seed: int, hidden: bool = True,
             diagnose: bool = True) -> CheckResult:
    """Run every case of ``spec`` through ``call`` and judge the outputs.

    Args:
        spec: the exercise contract.
        call: ``call(case) -> output`` runs the learner's function on one case and returns
            its output as NumPy data; it raises to signal an error in the learner's code
            (``NotImplementedError`` means "not attempted").
        seed: seeds the random cases; recorded in the result for reproduction.
        hidden: include the hidden cases (grading) or only the visible ones.
        diagnose: on failure, compare the learner's outputs with each mutant's.

    Returns:
        A :class:`CheckResult`.  Never raises for a learner's mistake.

    Raises:
        ImportError: when the reference kernels (``solutions``) are not installed.
    """
    ref = spec.reference() if spec.judge is None else None
    cases = list(spec.iter_cases(seed, hidden))
    results: list[CaseResult] = []
    learner: list[tuple[bool, Any]] = []
    for c in cases:
        try:
            with np.errstate(all="ignore"):
                got = call(c)
        except NotImplementedError:
            return CheckResult(spec.id, seed, "not attempted")
        except Exception as e:  # the learner's exception is a failed case, not a crash
            etype = getattr(e, "etype", type(e).__name__)  # the sandbox reports the type by name
            results.append(CaseResult(c.name, False, f"raised {etype}: {e}"))
            learner.append((False, etype))
            continue
        learner.append((True, got))
        if spec.judge is not None:
            msg = spec.judge(c, got)
        else:
            expected = invoke(ref, spec.framework, c.args, c.kwargs)
            exact = invoke(ref, spec.framework, _as_float64(c.args),
                           {k: _as_float64(v) for k, v in c.kwargs.items()})
            msg = compare(got, expected, exact, rtol64=spec.rtol64, atol32=spec.atol32,
                          rtol32=spec.rtol32)
        results.append(CaseResult(c.name, msg is None, msg or ""))
    status = "passed" if all(r.passed for r in results) else "failed"
    diagnosis = None
    if status == "failed" and diagnose:
        diagnosis = diagnose_mistake(spec, cases, learner)
    return CheckResult(spec.id, seed, status, results, diagnosis, judged=spec.judge is not None)


def diagnose_mistake(spec: Spec, cases: list[Case], learner: list[tuple[bool, Any]]) -> Mutant | None:
    """The first catalogued mutant whose outputs equal the learner's on *every* case."""
    for m in spec.mutant_objects():
        if all(_matches(_outcome(m, spec.framework, c), out) for c, out in zip(cases, learner)):
            return m
    return None


def _matches(a: tuple[bool, Any], b: tuple[bool, Any]) -> bool:
    if a[0] != b[0]:
        return False
    return a[1] == b[1] if not a[0] else same(a[1], b[1])
