"""Starting sandboxed processes and reading what they write, in bounded memory.

Each process's stdout and stderr share one pipe; a status pipe carries the launcher's report
(layers, then `done` or `passed`). Pipes are read as streams through a selector, keeping only a
capped tail: a process that writes past its cap is stopped, so a flood costs the evaluator a
fixed amount of memory however long it would run.
"""

from __future__ import annotations

import marshal
import os
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# Inside the sandbox: read the two modules' code from stdin, register the wire module under the
# name the child code looks it up by, run the child code. Compiled once here and sent marshalled
# (same interpreter on both sides), since compiling them in every process would double its cost.
_BOOT = ("import marshal, sys\n"
         "stdin = sys.stdin.buffer\n"
         "wire_code, child_code = marshal.loads(stdin.read(int(stdin.readline())))\n"
         "wire = sys.modules['sandbox_wire'] = type(sys)('sandbox_wire')\n"
         "exec(wire_code, wire.__dict__)\n"
         "exec(child_code, {'__name__': '__main__'})\n")
_CODE: list[bytes] = []


def _code() -> bytes:
    if not _CODE:
        blob = marshal.dumps(tuple(compile((_HERE / name).read_text(), str(_HERE / name), "exec")
                                   for name in ("sandbox_wire.py", "sandbox_child.py")))
        _CODE.append(f"{len(blob)}\n".encode() + blob)
    return _CODE[0]


@dataclass
class Stream:
    """One pipe's reading end; counts every byte, keeps the last `cap` of them."""
    fd: int
    cap: int
    total: int = 0
    tail: bytearray = field(default_factory=bytearray)

    def read(self) -> bool:
        """Take what is there; False at the end of the stream."""
        chunk = os.read(self.fd, 1 << 16)
        self.total += len(chunk)
        self.tail += chunk
        del self.tail[:-self.cap]
        return bool(chunk)

    @property
    def over(self) -> bool:
        return self.total > self.cap

    def text(self) -> str:
        return self.tail.decode("utf-8", "replace")


@dataclass
class Process:
    popen: subprocess.Popen
    uid: int
    output: Stream
    status: Stream


def spawn(role: str, source: str, cfg: dict, workdir: str, output_cap: int) -> Process:
    """Start the launcher as root (or as this user) in a session of its own, in a directory of
    its own under `workdir`. `cfg` holds the uid it becomes (-1: none), the limits, and the fds
    it inherits (`request`/`reply` for the wire; `status` is made here)."""
    cwd = os.path.join(workdir, role)  # its own, where there is no private /tmp (degraded)
    os.mkdir(cwd, 0o700)
    if cfg["uid"] >= 0:
        os.chown(cwd, cfg["uid"], cfg["uid"])
    env = {"PATH": "/usr/bin:/bin", "HOME": cwd, "TMPDIR": cwd, "LANG": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}
    status_r, status_w = os.pipe()
    inherit = [status_w] + [cfg[k] for k in ("request", "reply") if k in cfg]
    try:
        args = [f"{k}={v}" for k, v in {**cfg, "role": role, "status": status_w}.items()]
        popen = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _BOOT, *args],
            cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, pass_fds=inherit, start_new_session=True)
    except BaseException:
        os.close(status_r)
        raise
    finally:
        os.close(status_w)
    try:
        popen.stdin.write(_code() + source.encode("utf-8", "surrogatepass"))
        popen.stdin.close()
    except OSError:  # it died during its own setup; its output says why
        pass
    return Process(popen, cfg["uid"], Stream(popen.stdout.fileno(), output_cap),
                   Stream(status_r, 4096))


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # before Linux 5.3 or Python 3.9: poll instead
        return None


def watch(judge: Process, streams: list[Stream], deadline: float) -> str | Stream:
    """Read every stream until the judging process exits ('exited'), the deadline passes
    ('timeout') or a stream passes its cap (that stream)."""
    selector = selectors.DefaultSelector()
    pidfd = _pidfd(judge.popen.pid)
    try:
        for stream in streams:
            selector.register(stream.fd, selectors.EVENT_READ, stream)
        if pidfd is not None:
            selector.register(pidfd, selectors.EVENT_READ, None)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            for key, _ in selector.select(left if pidfd is not None else min(left, 0.02)):
                if key.data is None:
                    return "exited"
                if not key.data.read():
                    selector.unregister(key.fd)
                elif key.data.over:
                    return key.data
            if pidfd is None and judge.popen.poll() is not None:
                return "exited"
    finally:
        selector.close()
        if pidfd is not None:
            os.close(pidfd)


def drain(streams: list[Stream]) -> None:
    """Take what the (now killed) processes left in their pipes, without waiting on a writer
    that may still hold one, and never past a stream's cap by more than a read."""
    for stream in streams:
        os.set_blocking(stream.fd, False)
        try:
            while not stream.over and stream.read():
                pass
        except BlockingIOError:
            continue


def close(processes: list[Process]) -> None:
    for p in processes:
        for pipe in (p.popen.stdout, p.popen.stdin):
            if pipe and not pipe.closed:
                pipe.close()
        os.close(p.status.fd)
        try:
            p.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:  # killed already; the kernel will reap it
            pass
