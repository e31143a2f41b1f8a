"""Self-study commands of the ``grader`` CLI (check, progress, quiz)."""
import typer


def register(app: typer.Typer) -> None:
    """Add the self-study commands to the ``grader`` app."""
