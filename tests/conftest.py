"""Test-wide settings: self-study progress and quiz results go to a scratch folder, never
to the developer's home."""
import os
import tempfile

os.environ["GRADER_HOME"] = tempfile.mkdtemp(prefix="grader-home-")
