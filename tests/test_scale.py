"""Scale-out and faults: a real Dask cluster on loopback grades like a local run, and a run
killed part-way resumes without regrading or losing anything."""
import csv
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from grader.demo import completed, with_mutant
from grader.checks import get
from grader.grading.pipeline import autograde

BIN = Path(sys.executable).parent


def _class(dest: Path, n: int) -> None:
    wrong = get("softmax.stable").mutant_objects()[0]
    for i in range(n):
        nb = completed("softmax", "basic")
        if i % 3 == 2:
            with_mutant(nb, "softmax.softmax", wrong)
        p = dest / f"s{i:02d}" / "softmax" / "basic.ipynb"
        p.parent.mkdir(parents=True)
        nbformat.write(nb, p)


def _scores(out: Path) -> dict:
    with open(out / "grades.csv") as f:
        return {(r["student_id"], r["grade_id"]): (float(r["score"]), r["diagnosis"]) for r in csv.DictReader(f)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dask_cluster_grades_like_a_local_run(tmp_path):
    _class(tmp_path / "class", 4)
    autograde(tmp_path / "class", tmp_path / "local", feedback=False, run_seed="fixed", workers=1)
    port = _free_port()
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)]
    try:
        for _ in range(2):
            procs.append(subprocess.Popen([str(BIN / "dask"), "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1",
                                           "--no-dashboard", "--memory-limit", "0"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        from distributed import Client

        with Client(f"tcp://127.0.0.1:{port}", timeout=60) as c:
            c.wait_for_workers(2, timeout=120)
            assert len(c.scheduler_info()["workers"]) == 2
        remote = autograde(tmp_path / "class", tmp_path / "remote", feedback=False, run_seed="fixed",
                           scheduler=f"tcp://127.0.0.1:{port}")
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGKILL)
    assert not remote.failed and len(remote.graded) == 4
    assert _scores(tmp_path / "remote") == _scores(tmp_path / "local")


def test_killed_run_resumes_without_regrading_or_losing_grades(tmp_path):
    _class(tmp_path / "class", 6)
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "grader", "autograde", str(tmp_path / "class"), "--out", str(out),
                          "--workers", "1", "--no-feedback", "--seed", "fixed"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline and len(list((out / "results").rglob("*.json"))) < 2:
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGKILL)  # part-way: some graded, some not
    p.wait()
    done_before = {f.parts[-3] for f in (out / "results").rglob("*.json")}
    assert 2 <= len(done_before) < 6, done_before
    rerun = autograde(tmp_path / "class", out, feedback=False, run_seed="fixed", workers=1)
    assert {s for s, _ in rerun.skipped} == done_before, "nothing already graded is regraded"
    assert {s for s, _ in rerun.graded} == {f"s{i:02d}" for i in range(6)} - done_before
    scores = _scores(out)
    assert len(scores) == len(rerun.rows) == 6 * len({g for _, g in scores}), "one row per student and test"
    autograde(tmp_path / "class", tmp_path / "fresh", feedback=False, run_seed="fixed", workers=1)
    assert scores == _scores(tmp_path / "fresh"), "same grades as an uninterrupted run"
    forced = autograde(tmp_path / "class", out, feedback=False, run_seed="fixed", workers=1, force=True)
    assert len(forced.graded) == 6 and not forced.skipped
