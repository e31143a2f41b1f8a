"""Launching sandboxed workers: bubblewrap, an unprivileged uid, and resource limits.

The sandbox sees, read-only, only what Python needs (``/usr``, the Python installation,
the virtualenv and the ``grader`` package); ``solutions/``, the gradebook, submissions and
other students' files are simply not there.  It has no network, its own PID namespace (so
every process the student starts dies with it), a private tmpfs as scratch, and limits on
CPU time, address space and process count.  Where bubblewrap is missing, workers run with
the resource limits only, and :func:`sandbox_status` says so loudly.
"""
from __future__ import annotations

import itertools
import os
import resource
import secrets
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .wire import WireError, decode

GRADER_PKG = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Limits:
    """Per-worker limits: CPU seconds, address space (bytes), processes+threads, wall time
    for start-up (seconds)."""

    cpu_seconds: int = 900
    address_space: int = 8 << 30
    nproc: int = 64
    startup_timeout: float = 60.0
    threads: int = 1


class WorkerDied(RuntimeError):
    """The worker process exited or broke the protocol (the student's code killed it)."""


class WorkerTimeout(RuntimeError):
    """A request took longer than its time limit; the worker has been killed."""


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def sandbox_status() -> str:
    """``"bubblewrap"`` when real isolation is used, else a loud warning text."""
    if bwrap_path() and _bwrap_works():
        return "bubblewrap"
    return ("WARNING: bubblewrap is not available; student code runs with resource limits "
            "only (no filesystem or network isolation)")


_BWRAP_OK: bool | None = None


def _bwrap_works() -> bool:
    global _BWRAP_OK
    if _BWRAP_OK is None:
        try:
            r = subprocess.run([bwrap_path(), "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid",
                                "--proc", "/proc", "--dev", "/dev", "true"],
                               capture_output=True, timeout=20)
            _BWRAP_OK = r.returncode == 0
        except Exception:
            _BWRAP_OK = False
    return _BWRAP_OK


def _dirs_for(path: str) -> list[str]:
    """bwrap arguments creating every ancestor of ``path`` world-traversable."""
    out, cur = [], Path("/")
    for part in Path(path).parts[1:-1]:
        cur = cur / part
        out += ["--perms", "0755", "--dir", str(cur)]
    return out


def _bwrap_cmd(worker_argv: list[str], threads: int) -> list[str]:
    ro = [sys.base_prefix, sys.prefix, str(GRADER_PKG)]
    cmd = [bwrap_path(), "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid",
           "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
           "--ro-bind", "/usr", "/usr"]
    for name in ("lib", "lib64", "bin", "sbin"):
        if os.path.islink(f"/{name}"):
            cmd += ["--symlink", os.readlink(f"/{name}"), f"/{name}"]
        elif os.path.isdir(f"/{name}"):
            cmd += ["--ro-bind", f"/{name}", f"/{name}"]
    for p in ro:
        cmd += _dirs_for(p) + ["--ro-bind", p, p]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--perms", "0777", "--dir", "/tmp/home",
            "--chdir", "/tmp/home", "--clearenv",
            "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp/home",
            "--setenv", "MPLBACKEND", "Agg", "--setenv", "MPLCONFIGDIR", "/tmp/home/.mpl",
            "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--setenv", "OMP_NUM_THREADS", str(threads),
            "--setenv", "LANG", "C.UTF-8"]
    return cmd + worker_argv


_uids = itertools.count()


class Worker:
    """One sandboxed Python process for one notebook of one student.

    Never reused across notebooks: state (globals, files in its tmpfs, processes) dies
    with it.  Create it ahead of time to have it warm (imports done) when needed.
    """

    def __init__(self, limits: Limits = Limits()):
        self.limits = limits
        uid = 61000 + next(_uids) % 2000  # a distinct uid per worker: process limits don't collide
        argv = [sys.executable, "-m", "grader.grading.worker", str(uid), str(limits.nproc)]
        self.sandboxed = bool(bwrap_path()) and _bwrap_works()
        if self.sandboxed:
            cmd = _bwrap_cmd(argv, limits.threads)
            env = None
        else:
            cmd = argv
            env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "MPLBACKEND": "Agg",
                   "OMP_NUM_THREADS": str(limits.threads), "PYTHONPATH": str(GRADER_PKG.parent)}

        def preexec():
            resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
            resource.setrlimit(resource.RLIMIT_AS, (limits.address_space, limits.address_space))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=preexec, env=env, cwd="/tmp")
        self._buf = b""
        self._ready = False

    # -- protocol ---------------------------------------------------------------------
    def wait_ready(self) -> None:
        if not self._ready:
            msg = self._read(self.limits.startup_timeout)
            if msg.get("op") != "ready":
                self.kill()
                raise WorkerDied("the worker did not start")
            self._ready = True

    def request(self, msg: dict, timeout: float) -> dict:
        """Send one request and wait up to ``timeout`` seconds for its reply.

        Raises:
            WorkerTimeout: no reply in time (the worker is killed).
            WorkerDied: the worker exited, or replied with something malformed.
        """
        from .wire import encode

        self.wait_ready()
        rid = secrets.token_hex(16)  # unpredictable: student code cannot pre-forge a reply
        try:
            self.proc.stdin.write(encode({**msg, "id": rid}))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.kill()
            raise WorkerDied(self._death())
        reply = self._read(timeout)
        if not isinstance(reply, dict) or reply.get("id") != rid:
            self.kill()
            raise WorkerDied("the worker answered out of turn (its output was tampered with)")
        return reply

    def _read(self, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        need = None
        while True:
            if need is None and len(self._buf) >= 4:
                (hlen,) = struct.unpack("<I", self._buf[:4])
                if len(self._buf) >= 12 + hlen:
                    (blen,) = struct.unpack("<Q", self._buf[4 + hlen:12 + hlen])
                    need = (hlen, blen)
                    if hlen > (1 << 30) or blen > (1 << 30):
                        self.kill()
                        raise WorkerDied("the worker sent an oversized message")
            if need and len(self._buf) >= 12 + need[0] + need[1]:
                hlen, blen = need
                header, blob = self._buf[4:4 + hlen], self._buf[12 + hlen:12 + hlen + blen]
                self._buf = self._buf[12 + hlen + blen:]
                try:
                    return decode(header, blob)
                except WireError as e:
                    self.kill()
                    raise WorkerDied(f"the worker sent malformed data: {e}")
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise WorkerTimeout(f"no answer within {timeout:g} s")
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    self.kill()
                    raise WorkerDied(self._death())
                self._buf += chunk

    def _death(self) -> str:
        code = self.proc.poll()
        if code is None:
            return "the worker stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            why = {"SIGXCPU": " (CPU time limit)", "SIGKILL": " (killed)"}.get(name, "")
            return f"the notebook's process died from {name}{why}"
        return f"the notebook's process exited with code {code}"

    def kill(self) -> None:
        """End the worker and every process it started (its whole session)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except Exception:
                pass

    close = kill
