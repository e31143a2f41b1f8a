"""The last stage of grading: ``grades.csv`` from the gradebook, and the summary table.

Scores come from nbgrader's gradebook (which SaveAutoGrades filled from outputs only the
trusted grader wrote); status, diagnosis, seed and flags come from the trusted results
files.  The first six columns are fixed: student_id, assignment_id, notebook_id,
grade_id, score, max_score.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from ..course import Course
from .collect import Problem

COLUMNS = ["student_id", "assignment_id", "notebook_id", "grade_id", "score", "max_score",
           "status", "diagnosis", "seed", "flags", "message"]


def export_rows(gb, course: Course, out: Path, problems: list[Problem],
                failed: dict[tuple[str, str], str] | None = None) -> list[dict]:
    """One row per autograded test cell of every submission in the gradebook ``gb``;
    ``failed`` maps (student, assignment) to why grading failed (status "error")."""
    from nbgrader.api import MissingEntry

    why = {(p.student, p.assignment, p.notebook): p for p in problems}
    rows = []
    students = sorted(s.id for s in gb.students)
    for a in course.assignments:
        for student in students:
            try:
                sub = gb.find_submission(a.id, student)
            except MissingEntry:
                continue
            for nb in sorted(sub.notebooks, key=lambda n: list(a.notebooks).index(n.name)
                             if n.name in a.notebooks else 99):
                res_file = out / "results" / student / a.id / f"{nb.name}.json"
                rec = json.loads(res_file.read_text()) if res_file.exists() else {}
                problem = why.get((student, a.id, nb.name))
                for g in sorted(nb.grades, key=lambda g: g.name):
                    if g.cell.cell_type != "code":
                        continue
                    t = rec.get("tests", {}).get(g.name, {})
                    error = (failed or {}).get((student, a.id))
                    status = t.get("status") or ("not graded" if problem else "error" if error else "missing")
                    msg = problem.reason if problem else error if error and not t else \
                        (t.get("message", "") or "").splitlines()[0:1]
                    rows.append({
                        "student_id": student, "assignment_id": a.id, "notebook_id": nb.name,
                        "grade_id": g.name, "score": _num(g.score), "max_score": _num(g.max_score),
                        "status": status, "diagnosis": t.get("diagnosis", ""),
                        "seed": t.get("seed", ""), "flags": "; ".join(rec.get("flags", [])),
                        "message": msg if isinstance(msg, str) else (msg[0] if msg else ""),
                    })
    return rows


def _num(x) -> float:
    return float(x) if x is not None else 0.0


def write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)


def summary_table(report):
    """A rich Table: one line per student with score, diagnosed mistakes and flags."""
    from rich.table import Table

    per: dict[str, dict] = {}
    for r in report.rows:
        s = per.setdefault(r["student_id"], {"score": 0.0, "max": 0.0, "diag": [], "flags": set(), "status": set()})
        s["score"] += r["score"]
        s["max"] += r["max_score"]
        if r["diagnosis"]:
            s["diag"].append(f"{r['assignment_id']}/{r['notebook_id']}: {r['diagnosis'].split(':')[0]}")
        if r["flags"]:
            s["flags"].update(r["flags"].split("; "))
        s["status"].add(r["status"])
    t = Table(title=f"Autograded {len(report.graded)} submission(s) in {report.seconds:.1f} s "
                    f"(sandbox: {report.sandbox.split(';')[0]})")
    for col in ("student", "score", "diagnosed mistakes", "flagged"):
        t.add_column(col, overflow="fold")
    for student, s in sorted(per.items()):
        t.add_row(student, f"{s['score']:g} / {s['max']:g}", "\n".join(sorted(set(s["diag"])))[:400],
                  "yes: " + "; ".join(sorted(s["flags"]))[:200] if s["flags"] else "")
    return t
