"""What an exercise check *is*: a spec, its cases and its catalogue of mutants.

A :class:`Spec` names the learner's function (``entry``), the reference kernel in
``solutions/kernels`` that defines right answers, a generator of test cases (random shapes
plus named edge cases) and the known-wrong implementations in ``solutions/mutants``.

Kernels and mutants are referenced by dotted name (``"softmax.softmax"`` means
``solutions.kernels.softmax.softmax``) and resolved lazily, so a student install without
``solutions/`` can still import every spec (for hints and cases).
"""
from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import numpy as np


@dataclass(frozen=True)
class Case:
    """One call of the learner's function: ``fn(*args, **kwargs)``.

    ``args``/``kwargs`` hold only plain data (NumPy arrays, Python numbers, strings,
    ``None``, tuples/lists of those), so a case can be shipped to a sandbox as bytes.
    """

    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    expect: Any = None  # trusted data for a judge (e.g. held-out labels); never sent to the learner


def case(name: str, *args: Any, expect: Any = None, **kwargs: Any) -> Case:
    """Build a :class:`Case` named ``name`` for the call ``fn(*args, **kwargs)``.

    ``expect`` is data only the judge sees (held-out labels, a threshold...).
    """
    return Case(name, tuple(args), dict(kwargs), expect)


class CaseContext:
    """Hands out independent random generators, one per case name.

    Inputs of a case depend only on ``(seed, name)``, never on how many random numbers an
    earlier case drew, so expected values never depend on the order of RNG calls.
    """

    def __init__(self, seed: int, hidden: bool):
        self.seed = int(seed)
        self.hidden = hidden

    def rng(self, name: str) -> np.random.Generator:
        """A fresh ``np.random.Generator`` seeded from ``(seed, name)``."""
        digest = hashlib.sha256(f"{self.seed}:{name}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))


@dataclass
class Mutant:
    """A known-wrong implementation of an exercise: one common mistake, made on purpose."""

    fn: Callable
    name: str  # short name a learner recognises: "softmax without max-subtraction"
    why: str  # the consequence: "it overflows for logits above ~709"

    @property
    def key(self) -> str:
        return f"{self.fn.__module__.removeprefix('solutions.mutants.')}.{self.fn.__name__}"

    def describe(self) -> str:
        return f"matches {self.name}: {self.why}"

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


def mutant(name: str, why: str) -> Callable[[Callable], Mutant]:
    """Decorator for ``solutions/mutants``: register ``fn`` as a known mistake.

    >>> @mutant("softmax without max-subtraction", "it overflows for logits above ~709")
    ... def no_max_subtraction(x, axis=-1): ...
    """

    def wrap(fn: Callable) -> Mutant:
        return Mutant(fn=fn, name=name, why=why)

    return wrap


@dataclass
class Spec:
    """The contract of one exercise.

    Attributes:
        id: ``"<assignment>.<exercise>"``, e.g. ``"softmax.stable"``; test cells call
            ``check(id, fn)``.
        entry: name of the learner's function in the notebook, e.g. ``"softmax"``.
        kernel: dotted name of the reference under ``solutions.kernels``.
        cases: ``cases(ctx) -> iterable of Case``; ``ctx.hidden`` adds the hidden cases.
        mutants: dotted names under ``solutions.mutants`` (each a :class:`Mutant`).
        framework: ``"numpy"`` or ``"torch"``: what the learner's function takes and returns;
            ``"value"``: the entry is a plain value (a quiz answer), not a function, and the
            kernel is the right value.
        judge: optional ``judge(case, output) -> str | None`` that replaces the comparison with
            the reference (an error message, or None when it passes); used for training
            exercises graded by a threshold on held-out data (``case.expect``).  With a
            judge, the reference kernel is not called during checking.
        rtol64: relative tolerance for float64 outputs (default 1e-8).
        atol32, rtol32: tolerances for float32 outputs against a float64 reference.
        timeout: seconds one case may take in the trusted grader.
        hints: progressive hints, first the gentlest.
    """

    id: str
    entry: str
    kernel: str
    cases: Callable[[CaseContext], Iterable[Case]]
    mutants: list[str] = field(default_factory=list)
    framework: str = "numpy"
    judge: Callable | None = None
    rtol64: float = 1e-8
    atol32: float = 1e-5
    rtol32: float = 1e-4
    timeout: float = 10.0
    hints: list[str] = field(default_factory=list)
    doc: str = ""

    @property
    def assignment(self) -> str:
        return self.id.split(".", 1)[0]

    def reference(self) -> Callable:
        """The reference kernel (imports ``solutions.kernels``; raises ImportError without it)."""
        return _resolve("solutions.kernels", self.kernel)

    def mutant_objects(self) -> list[Mutant]:
        """The catalogue of known mistakes (imports ``solutions.mutants``)."""
        out = []
        for name in self.mutants:
            m = _resolve("solutions.mutants", name)
            if not isinstance(m, Mutant):
                raise TypeError(f"{name} is not decorated with @mutant")
            out.append(m)
        return out

    def iter_cases(self, seed: int, hidden: bool) -> Iterator[Case]:
        yield from self.cases(CaseContext(seed, hidden))


def _resolve(package: str, dotted: str) -> Any:
    module, _, attr = dotted.rpartition(".")
    return getattr(importlib.import_module(f"{package}.{module}"), attr)
