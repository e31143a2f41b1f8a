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
import socket
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
    cmd += ["--tmpfs", "/tmp"]  # before the code is bound: the code may itself live under /tmp
    for p in ro:
        cmd += _dirs_for(p) + ["--ro-bind", p, p]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--perms", "0777", "--dir", "/tmp/home",
            "--chdir", "/tmp/home", "--clearenv",
            "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp/home",
            "--setenv", "MPLBACKEND", "Agg", "--setenv", "MPLCONFIGDIR", "/tmp/home/.mpl",
            "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--setenv", "OMP_NUM_THREADS", str(threads),
            "--setenv", "LANG", "C.UTF-8"]
    return cmd + worker_argv


_uids = itertools.count()


class Zygote:
    """A sandboxed process with NumPy/torch/matplotlib imported that forks one isolated
    child per notebook (see :mod:`grader.grading.worker`).  Start it ahead of time; a
    child is then ready in milliseconds instead of seconds."""

    def __init__(self, limits: Limits = Limits()):
        self.limits = limits
        uid_base = 61000 + 1000 * (next(_uids) % 30)  # each zygote owns 1000 uids
        argv = [sys.executable, "-m", "grader.grading.worker", str(uid_base), str(limits.nproc),
                str(limits.cpu_seconds), str(limits.address_space), str(limits.threads)]
        self.sandboxed = bool(bwrap_path()) and _bwrap_works()
        if self.sandboxed:
            cmd, env = _bwrap_cmd(argv, limits.threads), None
        else:
            cmd = argv
            env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "MPLBACKEND": "Agg",
                   "OMP_NUM_THREADS": str(limits.threads), "PYTHONPATH": str(GRADER_PKG.parent)}
        ours, theirs = socket.socketpair()

        def preexec():
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        self.proc = subprocess.Popen(cmd, stdin=theirs.fileno(), stdout=theirs.fileno(),
                                     stderr=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=preexec, env=env, cwd="/tmp")
        theirs.close()
        self.ctrl = ours
        self._ready = False
        self.busy = False

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _recv(self, n: int, timeout: float) -> bytes:
        self.ctrl.settimeout(timeout)
        try:
            data = b""
            while len(data) < n:
                chunk = self.ctrl.recv(n - len(data))
                if not chunk:
                    raise WorkerDied("the sandbox stopped")
                data += chunk
            return data
        except (socket.timeout, OSError) as e:
            self.kill()
            raise WorkerDied(f"the sandbox did not answer ({type(e).__name__})") from None

    def spawn(self) -> "Child":
        """A fresh, isolated child for one notebook."""
        if not self._ready:
            if self._recv(1, self.limits.startup_timeout) != b"R":
                self.kill()
                raise WorkerDied("the sandbox did not start")
            self._ready = True
        if self.busy:
            raise RuntimeError("one child at a time")
        self.ctrl.sendall(b"S")
        self.ctrl.settimeout(self.limits.startup_timeout)
        try:
            msg, fds, _, _ = socket.recv_fds(self.ctrl, 1, 1)
        except (socket.timeout, OSError):
            self.kill()
            raise WorkerDied("the sandbox did not fork a child")
        if msg != b"C" or len(fds) != 1:
            self.kill()
            raise WorkerDied("the sandbox answered out of protocol")
        self.busy = True
        return Child(self, fds[0])

    def wait_idle(self, timeout: float = 10.0) -> int:
        """Wait until the current child and all its processes are gone; its exit code."""
        data = self._recv(5, timeout)
        self.busy = False
        if data[:1] != b"I":
            self.kill()
            raise WorkerDied("the sandbox answered out of protocol")
        return struct.unpack("<i", data[1:])[0]

    def kill_child(self) -> int:
        self.ctrl.sendall(b"K")
        return self.wait_idle()

    def kill(self) -> None:
        """End the zygote, its children and everything they started."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            self.ctrl.close()
        except Exception:
            pass
        self.busy = False


class Child:
    """One notebook's sandboxed process: send it requests, then close it.

    Never reused: when it is closed (or times out, or dies) the zygote kills it and every
    process it started before another child is made.
    """

    def __init__(self, zygote: Zygote, fd: int):
        self.zygote, self.fd = zygote, fd
        self.sandboxed = zygote.sandboxed
        self._buf = b""
        self._ready = False
        self.closed = False

    def wait_ready(self) -> None:
        if not self._ready:
            msg = self._read(self.zygote.limits.startup_timeout)
            if msg.get("op") != "ready":
                self.kill()
                raise WorkerDied("the notebook's process did not start")
            self._ready = True

    def request(self, msg: dict, timeout: float) -> dict:
        """Send one request and wait up to ``timeout`` seconds for its reply.

        Raises:
            WorkerTimeout: no reply in time (the child is killed).
            WorkerDied: the child exited, or replied with something malformed.
        """
        from .wire import encode

        if self.closed:
            raise WorkerDied("the notebook's process is gone")
        self.wait_ready()
        rid = secrets.token_hex(16)  # unpredictable: student code cannot pre-forge a reply
        data = memoryview(encode({**msg, "id": rid}))
        try:
            while data:
                data = data[os.write(self.fd, data):]
        except OSError:
            raise WorkerDied(self._death())
        reply = self._read(timeout)
        if not isinstance(reply, dict) or reply.get("id") != rid:
            self.kill()
            raise WorkerDied("the notebook's process answered out of turn (its output was tampered with)")
        return reply

    def _read(self, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        need = None
        while True:
            if need is None and len(self._buf) >= 12:
                (hlen,) = struct.unpack("<I", self._buf[:4])
                if hlen > (1 << 30):
                    self.kill()
                    raise WorkerDied("the notebook's process sent an oversized message")
                if len(self._buf) >= 12 + hlen:
                    (blen,) = struct.unpack("<Q", self._buf[4 + hlen:12 + hlen])
                    if blen > (1 << 30):
                        self.kill()
                        raise WorkerDied("the notebook's process sent an oversized message")
                    need = (hlen, blen)
            if need and len(self._buf) >= 12 + need[0] + need[1]:
                hlen, blen = need
                header, blob = self._buf[4:4 + hlen], self._buf[12 + hlen:12 + hlen + blen]
                self._buf = self._buf[12 + hlen + blen:]
                try:
                    return decode(header, blob)
                except WireError as e:
                    self.kill()
                    raise WorkerDied(f"the notebook's process sent malformed data: {e}")
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise WorkerTimeout(f"no answer within {timeout:g} s")
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    chunk = os.read(self.fd, 1 << 20)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise WorkerDied(self._death())

                self._buf += chunk

    def _death(self) -> str:
        try:
            code = self._finish(kill=False)
        except WorkerDied as e:
            return str(e)
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            why = {"SIGXCPU": " (CPU time limit)", "SIGKILL": " (killed)"}.get(name, "")
            return f"the notebook's process died from {name}{why}"
        return f"the notebook's process exited with code {code}"

    def _finish(self, kill: bool) -> int:
        if self.closed:
            return 0
        self.closed = True
        try:
            os.close(self.fd)
        except OSError:
            pass
        z = self.zygote
        if not z.alive():
            raise WorkerDied("the sandbox stopped")
        try:
            return z.kill_child() if kill else z.wait_idle()
        except (WorkerDied, OSError):
            z.kill()
            raise

    def kill(self) -> None:
        """End this child and every process it started (the zygote stays warm)."""
        try:
            self._finish(kill=True)
        except (WorkerDied, OSError):
            pass

    close = kill


def Worker(limits: Limits = Limits()) -> Child:
    """A cold worker: a new zygote with one child (tests and one-off use)."""
    z = Zygote(limits)
    child = z.spawn()
    child._own_zygote = z
    return child
