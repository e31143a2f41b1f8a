"""The ``grader`` command line: build the course, autograde a class, run the demo, and the
self-study commands (check, progress, quiz)."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .course import CourseError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Attention exercises: build, autograde, self-study.")
console = Console()
warnings.filterwarnings("ignore", message=".*not in session.*")  # nbgrader + SQLAlchemy 2 noise
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


@app.command()
def autograde(submitted: Path = typer.Argument(..., help="SUBMITTED/<student>/<assignment>/<tier>.ipynb"),
              out: Path = typer.Option(..., "--out", help="output directory"),
              db: Optional[str] = typer.Option(None, "--db", help="gradebook SQLAlchemy URL (default sqlite in OUT)"),
              force: bool = typer.Option(False, "--force", help="regrade what is already graded"),
              seed: Optional[str] = typer.Option(None, "--seed", help="run seed (random by default; recorded)"),
              workers: Optional[int] = typer.Option(None, "--workers", help="local grading processes (default: CPU cores)"),
              scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask scheduler address, e.g. tcp://host:8786"),
              no_feedback: bool = typer.Option(False, "--no-feedback", help="skip the HTML feedback")):
    """Grade every submission through nbgrader with trusted, sandboxed execution; write
    OUT/grades.csv and OUT/feedback/, and print a summary."""
    from .grading.pipeline import autograde as run

    if not submitted.is_dir():
        err.print(f"[red]{submitted}: no such directory[/red]")
        raise typer.Exit(2)
    try:
        with _progress() as bar:
            report = run(submitted, out, db, force=force, run_seed=seed, workers=workers,
                         scheduler=scheduler, feedback=not no_feedback, progress=bar)
    except CourseError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2)
    _print_report(report)


class _progress:
    """A rich progress bar with ETA, as a ``progress(done, total, label)`` callable."""

    def __enter__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.p = Progress(TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          TextColumn("{task.description}"), console=err, transient=True)
        self.p.start()
        self.task = None
        return self

    def __call__(self, done: int, total: int, label: str) -> None:
        if self.task is None:
            self.task = self.p.add_task(label, total=total)
        self.p.update(self.task, completed=done, description=label)

    def __exit__(self, *exc):
        self.p.stop()


def _print_report(report) -> None:
    from .grading.report import summary_table

    if report.sandbox != "bubblewrap":
        err.print(f"[bold red]{report.sandbox}[/bold red]")
    console.print(summary_table(report))
    for p in report.problems:
        console.print(f"[yellow]not graded[/yellow] {p.student}: {p.path}: {p.reason}")
    for s, a, why in report.failed:
        console.print(f"[red]failed[/red] {s}/{a}: {why}")
    if report.skipped:
        console.print(f"{len(report.skipped)} submission(s) already graded (use --force to regrade)")
    flagged = len({r["student_id"] for r in report.rows if r["flags"]})
    console.print(f"graded {len(report.graded)}, skipped {len(report.skipped)}, failed {len(report.failed)}, "
                  f"not gradable {len(report.problems)}, flagged students {flagged}, time {report.seconds:.1f} s")
    console.print(f"grades: {report.out / 'grades.csv'}   feedback: {report.out / 'feedback'}   "
                  f"run seed: {report.run_seed}")


@app.command()
def demo(out: Path = typer.Option(Path("build/demo"), "--out", help="output directory")):
    """Build the course and autograde a generated class of sample students (a correct
    one, one per catalogued mistake, a blank notebook, a deleted test cell, a corrupt file,
    a foreign notebook and an unknown assignment)."""
    from .build import BuildError
    from .demo import run_demo

    try:
        with _progress() as bar:
            report = run_demo(out.resolve(), progress=bar)
    except (CourseError, BuildError) as e:
        err.print(f"[red]demo failed:[/red] {e}")
        raise typer.Exit(2)
    _print_report(report)
