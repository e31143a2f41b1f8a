"""The nbgrader course directory, assembled from this repository's layout.

nbgrader's source directory is ``solutions/`` and its release directory is ``exercises/``;
submissions, autograded copies, feedback and the gradebook live wherever a command puts
them (``grader autograde SUBMITTED --out OUT``).  Everything goes through nbgrader's own
Python API (:class:`nbgrader.apps.NbGraderAPI`).
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from traitlets.config import Config

from .course import ROOT, Course


# nbgrader runs the `alembic` executable (and kernels) by name: make this environment's
# scripts visible even when .venv was not activated.
_BIN = str(Path(sys.executable).parent)
if _BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")


def nbgrader_config(course: Course, *, root: Path = ROOT, db_url: str | None = None,
                    release: Path | None = None, submitted: Path | None = None,
                    out: Path | None = None) -> Config:
    """A traitlets Config for nbgrader over this repository.

    Args:
        course: the validated course (gives the course id).
        root: repository root; ``solutions/`` under it is nbgrader's source directory.
        db_url: SQLAlchemy URL of the gradebook (default SQLite in ``out`` or ``build``).
        release: where student versions go (default ``exercises/``).
        submitted: directory laid out as ``<student>/<assignment>/<tier>.ipynb``.
        out: where autograded notebooks and feedback go.
    """
    out = Path(out) if out else root / "build"
    c = Config()
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.course_id = course.id
    c.CourseDirectory.source_directory = "solutions"
    c.CourseDirectory.release_directory = str(release or root / "exercises")
    c.CourseDirectory.submitted_directory = str(submitted or out / "submitted")
    c.CourseDirectory.autograded_directory = str(out / "autograded")
    c.CourseDirectory.feedback_directory = str(out / "feedback")
    c.CourseDirectory.db_url = db_url or f"sqlite:///{out / 'gradebook.db'}"
    c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "*.py", "build"]
    c.Exchange.root = str(out / "exchange")
    return c


def nbgrader_api(config: Config):
    """An :class:`nbgrader.apps.NbGraderAPI` over ``config``, logging only warnings."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=config)
    api = NbGraderAPI(coursedir=coursedir, config=config)
    api.log.setLevel(logging.WARNING)
    return api
