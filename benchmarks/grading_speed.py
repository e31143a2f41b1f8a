"""Stock ``nbgrader autograde`` against ``grader autograde`` on the same class, in one run.

Builds a class of N honest students (every basic and intermediate notebook solved with
the reference), grades it once with stock nbgrader (in-kernel execution, one notebook after
another, the configuration nbgrader ships) and once with the trusted pipeline, checks that
both give the same scores, and prints per-notebook cost, throughput and the ratio.

    .venv/bin/python benchmarks/grading_speed.py --students 10 [--tiers basic intermediate]
        [--workers 2] [--assignments softmax weighted-sums ...]
"""
from __future__ import annotations

import argparse
import csv
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.course import load_course  # noqa: E402
from grader.demo import completed  # noqa: E402


def make_class(dest: Path, notebooks, students: int) -> int:
    n = 0
    for i in range(students):
        for a, t in notebooks:
            p = dest / f"student-{i:04d}" / a / f"{t}.ipynb"
            p.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(completed(a, t), p)
            n += 1
    return n


def stock(course, submitted: Path, out: Path, notebooks) -> tuple[float, dict]:
    """Stock nbgrader: its default Autograde preprocessors (Execute in the student's kernel)."""
    from nbgrader.api import Gradebook

    from grader.nbgrader_course import nbgrader_api, nbgrader_config

    out.mkdir(parents=True, exist_ok=True)
    cfg = nbgrader_config(course, root=ROOT, submitted=submitted, out=out, release=out / "release")
    cfg.Execute.timeout = 300
    api = nbgrader_api(cfg)
    api.log.setLevel(logging.ERROR)
    assignments = sorted({a for a, _ in notebooks})
    t0 = time.perf_counter()
    for a in assignments:
        res = api.generate_assignment(a, force=True, create=True)
        assert res["success"], res.get("log")
    for sdir in sorted(submitted.iterdir()):
        for a in assignments:
            res = api.autograde(a, sdir.name, force=True, create=True)
            assert res["success"], res.get("log", "")[-2000:]
    seconds = time.perf_counter() - t0
    scores = {}
    with Gradebook(cfg.CourseDirectory.db_url, course.id) as gb:
        for sdir in sorted(submitted.iterdir()):
            for a in assignments:
                for nb in gb.find_submission(a, sdir.name).notebooks:
                    if (a, nb.name) in notebooks:
                        for g in nb.grades:
                            if g.cell.cell_type == "code":
                                scores[(sdir.name, a, nb.name, g.name)] = float(g.score or 0)
    return seconds, scores


def ours(submitted: Path, out: Path, workers: int, notebooks) -> tuple[float, dict]:
    from grader.grading.pipeline import autograde

    t0 = time.perf_counter()
    report = autograde(submitted, out, workers=workers, feedback=False)
    seconds = time.perf_counter() - t0
    assert not report.failed, report.failed
    print("  phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in report.phases.items()))
    scores = {}
    with open(out / "grades.csv") as f:
        for r in csv.DictReader(f):
            if (r["assignment_id"], r["notebook_id"]) in notebooks:
                scores[(r["student_id"], r["assignment_id"], r["notebook_id"], r["grade_id"])] = float(r["score"])
    return seconds, scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=10)
    ap.add_argument("--tiers", nargs="+", default=["basic", "intermediate"])
    ap.add_argument("--assignments", nargs="*", default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-stock", action="store_true")
    args = ap.parse_args()

    course = load_course()
    notebooks = {(a, t) for a, t in course.notebooks() if t in args.tiers
                 and (not args.assignments or a in args.assignments)
                 and (ROOT / "solutions" / a / f"{t}.ipynb").exists()}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        tmp = Path(tmp)
        n = make_class(tmp / "class", sorted(notebooks), args.students)
        print(f"class: {args.students} students x {len(notebooks)} notebooks = {n} notebooks "
              f"({', '.join(sorted(args.tiers))} tiers of {len({a for a, _ in notebooks})} assignments)")
        t_ours, s_ours = ours(tmp / "class", tmp / "ours", args.workers, notebooks)
        print(f"grader autograde ({args.workers} workers): {t_ours:8.1f} s  {t_ours / n:6.3f} s/notebook  "
              f"{n / t_ours * 60:7.1f} notebooks/min")
        if args.skip_stock:
            return
        t_stock, s_stock = stock(course, tmp / "class", tmp / "stock", notebooks)
        print(f"stock nbgrader autograde:      {t_stock:8.1f} s  {t_stock / n:6.3f} s/notebook  "
              f"{n / t_stock * 60:7.1f} notebooks/min")
        same = s_ours == s_stock
        print(f"same scores: {same} ({len(s_ours)} test cells)")
        if not same:
            diff = [k for k in s_stock if s_ours.get(k) != s_stock[k]][:5]
            print("  differ at:", diff)
        print(f"speed-up (stock / ours): {t_stock / t_ours:5.2f}x")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
