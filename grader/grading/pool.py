"""Warm sandboxes: one zygote per grading process, started before it is needed.

The zygote has NumPy, torch and matplotlib imported and forks a fresh, isolated child per
notebook (:mod:`grader.grading.worker`), so a notebook costs a fork, not a Python start-up.
Children are never reused: nothing a student leaves behind reaches the next one.
"""
from __future__ import annotations

import threading

from .sandbox import Child, Limits, Zygote


class WarmPool:
    """Hands out fresh children of a warm zygote; replaces the zygote if it dies."""

    def __init__(self, size: int = 1, limits: Limits = Limits()):
        self.limits = limits
        self._lock = threading.Lock()
        self._zygote = Zygote(limits)
        self._spare = Zygote(limits) if size > 1 else None

    def get(self) -> Child:
        with self._lock:
            if not self._zygote.alive():
                self._zygote = self._spare if self._spare and self._spare.alive() else Zygote(self.limits)
                self._spare = None
            return self._zygote.spawn()

    def close(self) -> None:
        with self._lock:
            for z in (self._zygote, self._spare):
                if z is not None:
                    z.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
