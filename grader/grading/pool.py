"""Warm workers: sandboxed processes started ahead of time, imports already done.

A worker is used for exactly one notebook and then killed, so nothing a student leaves
behind (globals, files, processes) reaches the next one.  The pool only hides the start-up
cost by starting the next workers while the current notebook is graded.
"""
from __future__ import annotations

import threading
from collections import deque

from .sandbox import Limits, Worker


class WarmPool:
    """Keeps ``size`` started workers ready; :meth:`get` hands one out and starts another."""

    def __init__(self, size: int = 1, limits: Limits = Limits()):
        self.size, self.limits = size, limits
        self._ready: deque[Worker] = deque()
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(size):
            self._ready.append(Worker(limits))

    def get(self) -> Worker:
        with self._lock:
            if self._closed:
                raise RuntimeError("pool is closed")
            w = self._ready.popleft() if self._ready else Worker(self.limits)
            self._ready.append(Worker(self.limits))
        return w

    def close(self) -> None:
        with self._lock:
            self._closed = True
            while self._ready:
                self._ready.popleft().kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
