"""Self-study commands of the ``grader`` CLI: ``check``, ``progress`` and ``quiz``."""
from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table


class TierOpt(str, Enum):
    """The ``--tier`` choices."""

    basic = "basic"
    intermediate = "intermediate"
    advanced = "advanced"


def _stdin_reader():
    line = sys.stdin.readline()
    return None if line == "" else line.rstrip("\n")


def register(app: typer.Typer) -> None:
    """Add the self-study commands to the ``grader`` app."""

    @app.command("check")
    def check_cmd(notebook: Path = typer.Argument(..., help="a solution or exercise notebook"),
                  seed: Optional[int] = typer.Option(None, "--seed", help="seed of the random cases"),
                  timeout: int = typer.Option(600, "--timeout", help="seconds any one cell may run")):
        """Run NOTEBOOK top to bottom and print the verdict of every check in it.
        Exits 0 when every check passes, 1 otherwise (2 when the notebook cannot be read)."""
        from .nbcheck import check_notebook

        console = Console(highlight=False, soft_wrap=True)  # one verdict per line, even in a pipe
        if not notebook.exists():
            Console(stderr=True).print(f"[red]no such notebook:[/red] {notebook}")
            raise typer.Exit(2)
        try:
            res = check_notebook(notebook, seed=seed, timeout=timeout)
        except ValueError as e:
            Console(stderr=True).print(f"[red]cannot check {notebook}:[/red] {escape(str(e))}")
            raise typer.Exit(2)
        style = {"passed": "green", "failed": "red", "not attempted": "yellow", "error": "red"}
        for v in res.verdicts:
            lines = v.report.splitlines() if not v.passed else [v.summary]
            console.print(f"[{style.get(v.status, 'red')}]{escape(lines[0])}[/]")
            for line in lines[1:]:
                console.print(escape(line))
        for gid in res.manual:
            console.print(f"[dim]MANUAL {gid}: open answer, graded by hand (compare with the key points).[/dim]")
        for e in res.cell_errors:
            console.print(f"[dim]note: {escape(e)}[/dim]")
        n_ok = sum(v.passed for v in res.verdicts)
        console.print(f"{notebook}: {n_ok} of {len(res.verdicts)} checks pass.")
        raise typer.Exit(0 if res.passed else 1)

    @app.command("progress")
    def progress_cmd(as_json: bool = typer.Option(False, "--json", help="print the rows as JSON")):
        """Show self-study progress per topic and tier: exercises passed, attempts, hints
        used, and quiz-bank answers (stored in $GRADER_HOME)."""
        from . import progress

        rows = progress.table_rows()
        if as_json:
            print(json.dumps(rows, indent=1))
            return
        console = Console(highlight=False)
        if not rows:
            console.print(f"No progress yet (looked in {progress.home()}).")
            return
        table = Table(title=f"Self-study progress ({progress.home()})")
        for col in ("topic", "tier", "passed / tried", "attempts", "hints"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["topic"], r["tier"], f"{r['passed']}/{r['exercises']}", str(r["attempts"]),
                          str(r["hints"]) if r["tier"] != "quiz bank" else "-")
        console.print(table)

    @app.command("quiz")
    def quiz_cmd(topic: Optional[str] = typer.Option(None, "--topic", help="assignment id, e.g. softmax"),
                 tier: Optional[TierOpt] = typer.Option(None, "--tier"),
                 count: Optional[int] = typer.Option(None, "--count", min=1,
                                                     help="questions to ask (default 10; 8 in a mock interview)"),
                 seed: Optional[int] = typer.Option(None, "--seed", help="shuffle seed"),
                 mock_interview: bool = typer.Option(False, "--mock-interview",
                                                     help="timed mixed set that rises in tier"),
                 minutes: float = typer.Option(20.0, "--minutes", help="time limit of a mock interview"),
                 list_: bool = typer.Option(False, "--list", help="list the bank instead of asking"),
                 as_json: bool = typer.Option(False, "--json", help="with --list: print JSON")):
        """The interview quiz in the terminal. Answers are read line by line, so they can be
        piped in. Questions answered wrong come back first in later sessions."""
        from .bank import BankError, banks, questions
        from .quiz import run_mock_interview, run_quiz, order

        err = Console(stderr=True)
        try:
            qs = questions()
        except BankError as e:
            err.print(f"[red]quiz bank invalid:[/red] {escape(str(e))}")
            raise typer.Exit(2)
        if topic is not None and topic not in banks():
            err.print(f"[red]unknown topic {topic!r}[/red]; known: {', '.join(banks())}")
            raise typer.Exit(2)
        qs = [q for q in qs if (topic is None or q.topic == topic)
              and (tier is None or mock_interview or q.tier == tier.value)]
        if list_:
            if as_json:
                print(json.dumps([{"topic": q.topic, **q.model_dump(exclude_none=True)} for q in qs], indent=1))
            else:
                table = Table(title=f"{len(qs)} questions")
                for col in ("id", "tier", "kind", "prompt"):
                    table.add_column(col)
                for q in qs:
                    p = " ".join(q.prompt.split())
                    table.add_row(q.id, q.tier, q.kind, p[:70] + ("..." if len(p) > 70 else ""))
                Console(highlight=False).print(table)
            return
        if not qs:
            err.print("[red]no questions match[/red]")
            raise typer.Exit(2)
        console = Console(highlight=False)
        if mock_interview:
            run_mock_interview(qs, console, _stdin_reader, count=count or 8, minutes=minutes, seed=seed)
        else:
            run_quiz(order(qs, seed)[: count or 10], console, _stdin_reader)
