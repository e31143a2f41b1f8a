"""One module per topic, holding the specs of that topic's exercises (see grader.checks)."""
