"""Self-study: the learner API (check/hint/solution), progress, and the interview quiz."""
