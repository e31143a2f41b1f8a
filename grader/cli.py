"""The ``grader`` command line: build the course, autograde a class, run the demo, and the
self-study commands (check, progress, quiz)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .course import CourseError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Attention exercises: build, autograde, self-study.")
console = Console()
err = Console(stderr=True)


@app.callback()
def main() -> None:
    """Attention exercises: build, autograde, self-study."""


@app.command()
def build(only: Optional[list[str]] = typer.Option(None, "--only", help="assignment id(s) to build"),
          check: bool = typer.Option(False, "--check", help="only report whether exercises/ is stale")):
    """Validate course.yml, sync solution cells from the reference kernels, and generate
    exercises/ with nbgrader's generate_assignment."""
    from .build import BuildError, build as run_build

    try:
        changed = run_build(check_only=check, only=only)
    except (CourseError, BuildError, KeyError) as e:
        err.print(f"[red]build failed:[/red] {e}")
        raise typer.Exit(2)
    if check and changed:
        err.print("[red]stale:[/red] run `grader build`; these differ:\n  " + "\n  ".join(changed))
        raise typer.Exit(1)
    console.print(f"{'would write' if check else 'wrote'} {len(changed)} file(s)" +
                  ("".join(f"\n  {c}" for c in changed)))


from .selfstudy.cli import register as _register_selfstudy  # noqa: E402

_register_selfstudy(app)
