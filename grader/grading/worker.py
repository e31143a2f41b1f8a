"""The sandboxed side of trusted grading: a zygote that forks one child per notebook.

Started by :mod:`grader.grading.sandbox` as ``python -m grader.grading.worker`` inside
bubblewrap, with fds 0/1 being a Unix control socket to the trusted parent.  The zygote
imports NumPy, torch and matplotlib once and runs no student code.  For each notebook it:

1. makes a fresh socketpair and forks a child;
2. the child closes the control socket, gets a private mount namespace with an empty
   tmpfs on /tmp, drops to its own unprivileged uid, sets CPU/memory/process limits, points
   fds 0-2 at /dev/null, and serves requests on its end of the pair;
3. the zygote hands the other end to the parent (SCM_RIGHTS) and watches the child;
4. when the child exits (or the parent says ``K``), the zygote kills every process of the
   child's uid and reports ``I`` (idle) with the exit status.

So every student gets a fresh process with nothing left by the previous one, and nothing
the student starts outlives its notebook.  Requests on the child socket:
``{"op": "exec", "id", "cells"}`` and ``{"op": "call", "id", "entry", "framework", "args",
"kwargs"}``; replies echo the id.  Nothing here decides a grade.
"""
from __future__ import annotations

import ctypes
import os
import resource
import select
import signal
import socket
import struct
import sys

CLONE_NEWNS, MS_REC, MS_PRIVATE = 0x00020000, 0x4000, 1 << 18
MS_RDONLY, MS_REMOUNT, MS_BIND = 1, 32, 4096


# ---------------------------------------------------------------- the child (student code)
def _isolate(uid: int, limits: dict) -> None:
    """Private /tmp, unprivileged uid, resource limits.  Runs before any student code."""
    libc = ctypes.CDLL(None, use_errno=True)
    if os.getuid() == 0:
        if libc.unshare(CLONE_NEWNS) == 0:
            libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None)
            # code under /tmp (a checkout there) must survive the fresh tmpfs: hold it by fd,
            # mount the tmpfs, then bind it back read-only
            import grader

            code = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(grader.__file__)))}
            keep = [(p, os.open(p, os.O_PATH | os.O_DIRECTORY)) for p in sorted(code) if p.startswith("/tmp/")]
            libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, b"size=512m,mode=1777")
            for p, fd in keep:
                os.makedirs(p, exist_ok=True)
                libc.mount(f"/proc/self/fd/{fd}".encode(), p.encode(), None, MS_BIND | MS_REC, None)
                libc.mount(None, p.encode(), None, MS_BIND | MS_REMOUNT | MS_RDONLY, None)
                os.close(fd)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    os.makedirs("/tmp/home", exist_ok=True)
    os.chdir("/tmp/home")
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["nproc"], limits["nproc"]))
    resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu"], limits["cpu"] + 5))
    resource.setrlimit(resource.RLIMIT_AS, (limits["mem"], limits["mem"]))
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)


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


def _call(msg: dict, ns: dict) -> dict:
    from grader.checks.run import invoke

    entry = msg["entry"]
    if entry not in ns:
        return {"ok": False, "not_attempted": True, "error": f"`{entry}` is not defined"}
    try:
        out = invoke(ns[entry], msg["framework"], tuple(msg["args"]), msg["kwargs"])
    except NotImplementedError:
        return {"ok": False, "error": "NotImplementedError", "not_attempted": True}
    except BaseException as e:
        return {"ok": False, "error": str(e)[:2000], "etype": type(e).__name__[:100]}
    return {"ok": True, "out": out}


class _SockFile:
    """Minimal blocking binary reader over a socket fd for wire.read_message."""

    def __init__(self, fd: int):
        self.fd = fd

    def read(self, n: int) -> bytes:
        return os.read(self.fd, n)


def serve(fd: int) -> None:
    """Answer exec/call requests on socket ``fd`` until the parent closes it."""
    from grader.grading.wire import WireError, encode, read_message

    ns: dict = {"__name__": "__main__", "__builtins__": __builtins__}
    reader = _SockFile(fd)

    def send(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    send(encode({"op": "ready"}))
    while True:
        try:
            msg = read_message(reader)
        except (EOFError, OSError, WireError):
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
        send(data)


# ---------------------------------------------------------------- the zygote (no student code)
def _warm_up(threads: int) -> None:
    import numpy  # noqa: F401

    for mod in ("torch", "matplotlib.pyplot", "IPython.core.inputtransformer2", "grader.checks.run",
                "grader.grading.wire", "sklearn.datasets", "sacrebleu"):
        try:
            __import__(mod)
        except Exception:
            pass
    try:
        import torch

        torch.set_num_threads(threads)
    except Exception:
        pass


def _kill_uid(uid: int) -> None:
    """Kill every process running as ``uid`` (the child's whole family)."""
    if os.getuid() != 0:
        return
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)  # every process this uid may signal: its own
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def zygote(ctrl: socket.socket, limits: dict) -> None:
    """Fork one isolated child per ``S`` request; report ``I`` when it is gone."""
    uid_base, n = limits["uid"], 0
    ctrl.sendall(b"R")
    while True:
        cmd = ctrl.recv(1)
        if cmd != b"S":
            return  # parent closed the control socket (or sent nonsense): shut down
        n += 1
        uid = uid_base + n % 1000
        _kill_uid(uid)  # nothing of an earlier holder of this uid survives
        mine, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # child
            try:
                ctrl.close()
                mine.close()
                fd = os.dup(theirs.fileno())
                theirs.close()
                for other in range(3, 256):
                    if other != fd:
                        try:
                            os.close(other)
                        except OSError:
                            pass
                _isolate(uid, limits)
                serve(fd)
            finally:
                os._exit(0)
        theirs.close()
        socket.send_fds(ctrl, [b"C"], [mine.fileno()])
        mine.close()
        status = None
        while status is None:  # watch the child and the control socket together
            r, _, _ = select.select([ctrl], [], [], 0.05)
            if r:
                c = ctrl.recv(1)
                if c in (b"K", b""):
                    os.kill(pid, signal.SIGKILL)
                    if c == b"":
                        _kill_uid(uid)
                        return
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = st
        _kill_uid(uid)
        code = os.waitstatus_to_exitcode(status)
        ctrl.sendall(b"I" + struct.pack("<i", code))


def main() -> None:
    limits = {"uid": int(sys.argv[1]), "nproc": int(sys.argv[2]), "cpu": int(sys.argv[3]),
              "mem": int(sys.argv[4]), "threads": int(sys.argv[5])}
    ctrl = socket.socket(fileno=os.dup(0))
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    _warm_up(limits["threads"])
    zygote(ctrl, limits)


if __name__ == "__main__":
    main()
