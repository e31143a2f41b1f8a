"""Flags for the instructor: student code that reaches for the grader's machinery.

A flag never changes a score (scores come only from the trusted comparison); it tells
the instructor which submissions to look at.  Static flags come from the source of the
student's cells; the trusted grader adds run-time flags (timeouts, a process that died,
a tampered channel).
"""
from __future__ import annotations

import re
from typing import Iterable

SUSPICIOUS = [
    (r"\bget_ipython\s*\(|\bIPython\b", "uses the IPython machinery"),
    (r"\bos\s*\.\s*(kill|killpg|_exit|fork|forkpty|setsid|system|exec\w*|spawn\w*)\b", "uses process control (os.kill/fork/exec)"),
    (r"\bsubprocess\b|\bmultiprocessing\b|\bctypes\b|\bsignal\s*\.", "uses subprocess/signal/ctypes"),
    (r"\bsys\s*\.\s*_getframe\b|\binspect\s*\.\s*(stack|currentframe)\b|\bgc\s*\.\s*get_objects\b|\bf_back\b", "inspects the caller's frames"),
    (r"\b(assert_allclose|assert_array_equal|allclose|array_equal|isclose|assert_close)\s*=", "reassigns a comparison helper"),
    (r"\bsetattr\s*\(\s*(np|numpy|torch|grader)\b|\b(np|numpy|torch)\s*\.\s*testing\s*\.\s*\w+\s*=", "patches a library function"),
    (r"\bbuiltins\b|__builtins__", "touches builtins"),
    (r"gradebook|\.db\b|solutions[/.]|sqlite", "reaches for the gradebook or the solutions"),
    (r"NBGRADER|os\s*\.\s*environ|getenv", "reads environment variables"),
    (r"\bsocket\b|urllib|requests\b|http\.client", "uses the network"),
    (r"all tests passed|PASSED", "prints a fake verdict"),
    (r"__eq__|__array__|__array_ufunc__|__array_function__|__reduce__|__getattr__", "defines objects that can lie about their value"),
    (r"sys\s*\.\s*modules|importlib", "rewrites the import system"),
    (r"\b(from|import)\s+grader\b|\bgrader\s*\.\s*\w+\s*\.\s*\w+\s*=", "reaches into the grader package"),
    (r"settrace|setprofile", "installs a tracer"),
    (r"dtype\s*=\s*object", "builds object arrays"),
    (r"site-packages|__file__|/work/|/root/|\.\./", "touches files outside its folder"),
    (r"\bsys\s*\.\s*exit\b|\bexit\s*\(|\bquit\s*\(|\bos\s*\.\s*abort\b", "exits the interpreter"),
    (r"\bwhile\s+True\b|time\s*\.\s*sleep|bytearray\s*\(\s*10\s*\*\*", "may hang or exhaust memory"),
]


def static_flags(sources: Iterable[str]) -> list[str]:
    """Reasons to look at a submission, from its code cells' source."""
    text = "\n".join(sources)
    return [why for pattern, why in SUSPICIOUS if re.search(pattern, text)]
