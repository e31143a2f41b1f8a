"""Reading ``check(...)`` calls out of a test cell without running it.

Test cells are declarative: they may only import and call ``check("<spec id>", <name>,
hidden=<bool>)``.  The trusted grader parses them from the *instructor's* copy of the cell,
so editing a test cell in a submission changes nothing.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass


@dataclass(frozen=True)
class CheckCall:
    spec_id: str
    entry: str  # the learner's global name passed to check()
    hidden: bool


def parse_check_calls(source: str) -> list[CheckCall]:
    """The ``check(...)`` calls of a test cell, in order.

    Raises:
        ValueError: the cell holds anything but imports and literal check calls.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise ValueError(f"test cell is not valid Python: {e}") from None
    calls = []
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            continue
        call = stmt.value if isinstance(stmt, ast.Expr) else None
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "check"
                and len(call.args) == 2 and isinstance(call.args[0], ast.Constant)
                and isinstance(call.args[0].value, str) and isinstance(call.args[1], ast.Name)):
            raise ValueError(f"line {stmt.lineno}: test cells may only contain check(\"<spec id>\", <function name>[, hidden=True])")
        hidden = False
        for kw in call.keywords:
            if kw.arg != "hidden" or not isinstance(kw.value, ast.Constant):
                raise ValueError(f"line {stmt.lineno}: check() in a test cell takes only hidden=True/False")
            hidden = bool(kw.value.value)
        calls.append(CheckCall(call.args[0].value, call.args[1].id, hidden))
    return calls
