"""Where specs are registered and found.

Each topic has one module ``grader/specs/<assignment with _>.py`` whose functions are
decorated with :func:`spec`.  ``get("softmax.stable")`` imports ``grader.specs.softmax`` on
first use, so a spec id alone is enough to find its definition.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

from .model import CaseContext, Spec

REGISTRY: dict[str, Spec] = {}


def spec(id: str, **fields) -> Callable[[Callable[[CaseContext], object]], Spec]:
    """Decorator: register the decorated case generator as spec ``id``.

    ``fields`` are the other :class:`Spec` attributes (``entry``, ``kernel``, ``mutants``,
    ``hints``...).  The generator's docstring becomes the spec's description.
    """

    def wrap(cases: Callable) -> Spec:
        if id in REGISTRY:
            raise ValueError(f"spec {id!r} is defined twice")
        s = Spec(id=id, cases=cases, doc=(cases.__doc__ or "").strip(), **fields)
        REGISTRY[id] = s
        return s

    return wrap


def module_for(assignment: str) -> str:
    return "grader.specs." + assignment.replace("-", "_")


def get(spec_id: str) -> Spec:
    """The spec called ``spec_id``; raises KeyError with the known ids when there is none."""
    if spec_id not in REGISTRY:
        try:
            importlib.import_module(module_for(spec_id.split(".", 1)[0]))
        except ModuleNotFoundError:
            pass
    if spec_id not in REGISTRY:
        all_specs()  # specs may live outside their assignment's module (e.g. quizzes)
    if spec_id not in REGISTRY:
        raise KeyError(f"no exercise called {spec_id!r}; known: {', '.join(sorted(all_specs()))}")
    return REGISTRY[spec_id]


def all_specs() -> dict[str, Spec]:
    """Every spec of every topic, by id."""
    import grader.specs as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"grader.specs.{info.name}")
    return dict(REGISTRY)
