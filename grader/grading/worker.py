"""The sandboxed side of trusted grading: runs a student's cells, answers calls.

Started by :mod:`grader.grading.sandbox` as ``python -m grader.grading.worker UID NPROC``
inside bubblewrap.  It first drops to an unprivileged uid and caps its process count,
then pre-imports NumPy (and torch/matplotlib when present) so it is warm before any student
code arrives.  It speaks :mod:`grader.grading.wire` on private copies of stdin/stdout; fds
0-2 are pointed at /dev/null so printing cannot reach the channel.

Requests: ``{"op": "exec", "id", "cells": [src, ...]}`` and ``{"op": "call", "id",
"entry", "framework", "args", "kwargs"}``.  Replies echo the id.  Nothing here decides a
grade: the trusted process compares whatever comes back.
"""
from __future__ import annotations

import os
import resource
import sys


def _drop_privileges(uid: int, nproc: int) -> None:
    if os.getuid() == 0 and uid > 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def _channel():
    chan_in = os.fdopen(os.dup(0), "rb", buffering=0)
    chan_out = os.fdopen(os.dup(1), "wb", buffering=0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    return chan_in, chan_out


def _warm_up() -> None:
    import numpy  # noqa: F401

    for mod in ("torch", "matplotlib.pyplot"):
        try:
            __import__(mod)
        except Exception:
            pass
    try:
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    except Exception:
        pass


def _run_cell(src: str, index: int, ns: dict) -> dict:
    import contextlib
    import io
    import traceback

    buf = io.StringIO()
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        src = TransformerManager().transform_cell(src)
    except Exception:
        pass
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            exec(compile(src, f"<cell {index}>", "exec"), ns)
        return {"ok": True, "stdout": buf.getvalue()[-4000:]}
    except BaseException as e:  # SystemExit too: a student's exit() ends only that cell
        tb = traceback.format_exception(type(e), e, e.__traceback__)
        return {"ok": False, "error": f"{type(e).__name__}: {e}"[:2000],
                "traceback": "".join(tb)[-4000:], "stdout": buf.getvalue()[-4000:]}


def _call(msg: dict, ns: dict):
    from grader.checks.run import invoke

    entry = msg["entry"]
    if entry not in ns:
        return {"ok": False, "error": f"NameError: `{entry}` is not defined (did its cell run?)"}
    try:
        out = invoke(ns[entry], msg["framework"], tuple(msg["args"]), msg["kwargs"])
    except NotImplementedError:
        return {"ok": False, "error": "NotImplementedError", "not_attempted": True}
    except BaseException as e:
        return {"ok": False, "error": f"{type(e).__name__}: {e}"[:2000]}
    return {"ok": True, "out": out}


def main() -> None:
    uid, nproc = int(sys.argv[1]), int(sys.argv[2])
    _drop_privileges(uid, nproc)
    chan_in, chan_out = _channel()
    _warm_up()
    from grader.grading.wire import WireError, encode, read_message

    ns: dict = {"__name__": "__main__", "__builtins__": __builtins__}
    chan_out.write(encode({"op": "ready"}))
    while True:
        try:
            msg = read_message(chan_in)
        except EOFError:
            return
        if msg.get("op") == "exec":
            reply = {"cells": [_run_cell(src, i, ns) for i, src in enumerate(msg["cells"])]}
        elif msg.get("op") == "call":
            reply = _call(msg, ns)
        else:
            reply = {"ok": False, "error": "unknown op"}
        reply["id"] = msg.get("id")
        try:
            data = encode(reply)
        except WireError as e:
            data = encode({"id": msg.get("id"), "ok": False, "error": f"returned something that is not plain data: {e}"})
        except Exception as e:
            data = encode({"id": msg.get("id"), "ok": False, "error": f"output could not be sent: {type(e).__name__}"})
        chan_out.write(data)


if __name__ == "__main__":
    main()
