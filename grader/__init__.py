"""attention-grader: exercises, checks and trusted nbgrader autograding for attention."""
__version__ = "0.1.0"
