"""Autograding: nbgrader's autograde with this project's stages (see pipeline.py)."""
