"""Starting sandboxed processes and reading what they write, in bounded memory.

Each process's stdout and stderr share one pipe; a status pipe carries the launcher's report
(layers, then `done` or `passed`; or `error <cause>` if it could not be confined). Pipes are read
as streams through a selector, keeping only a capped tail (`Limits.output_bytes`), so a flood
costs the evaluator a fixed amount of memory however long it would run; a process is stopped only
past a much larger limit (`Limits.output_kill_bytes`), so a chatty but honest program still
passes. With the uid layer, what a program's uid left behind is found here by owner: processes
(ended) and top-level entries in the shared temp directories (removed).
"""

from __future__ import annotations

import marshal
import os
import selectors
import shutil
import signal
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
SHARED_TMP = ("/tmp", "/var/tmp", "/dev/shm")


def _code() -> bytes:
    if not _CODE:
        blob = marshal.dumps(tuple(compile((_HERE / name).read_text(), str(_HERE / name), "exec")
                                   for name in ("sandbox_wire.py", "sandbox_child.py")))
        _CODE.append(f"{len(blob)}\n".encode() + blob)
    return _CODE[0]


@dataclass
class Stream:
    """One pipe's reading end; counts every byte, keeps the last `cap` of them, and is `over`
    past `limit` bytes."""
    fd: int
    cap: int
    limit: int
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
        return self.total > self.limit

    def text(self) -> str:
        return self.tail.decode("utf-8", "replace")


@dataclass
class Process:
    popen: subprocess.Popen
    uid: int
    output: Stream
    status: Stream


def spawn(role: str, source: str, cfg: dict, workdir: str, output: tuple[int, int]) -> Process:
    """Start the launcher as root (or as this user) in a session of its own, in a directory of
    its own under `workdir`. `cfg` holds the uid it becomes (-1: none), the limits, and the fds
    it inherits (`request`/`reply` for the wire; `status` is made here); `output` is the tail
    kept of its output and the limit past which it is stopped."""
    cwd = os.path.join(workdir, role)  # its own, where there is no private /tmp (degraded)
    os.mkdir(cwd, 0o700)
    if cfg["uid"] >= 0:
        os.chown(cwd, cfg["uid"], cfg["uid"])
    env = {"PATH": "/usr/bin:/bin", "HOME": cwd, "TMPDIR": cwd, "LANG": "C.UTF-8"}
    status_r, status_w = os.pipe()
    inherit = [status_w] + [cfg[k] for k in ("request", "reply") if k in cfg]
    try:
        args = [f"{k}={v}" for k, v in {**cfg, "role": role, "status": status_w}.items()]
        # -I ignores every PYTHON* variable (it implies -E), so none is set: -B writes no
        # bytecode (into a prefix the program may share in the degraded modes), and hash
        # randomisation stays on, a seed per process as under HumanEval's own harness. Nothing
        # depends on it across the wire: values cross as plain data, rebuilt on the other side.
        popen = subprocess.Popen(
            [sys.executable, "-I", "-B", "-S", "-c", _BOOT, *args],
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
    return Process(popen, cfg["uid"], Stream(popen.stdout.fileno(), *output),
                   Stream(status_r, 4096, 4096))


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # before Linux 5.3 or Python 3.9: poll instead
        return None


def watch(judge: Process, streams: list[Stream], deadline: float) -> str | Stream:
    """Read every stream until the judging process exits ('exited'), the deadline passes
    ('timeout') or a stream passes its limit (that stream)."""
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
    that may still hold one, and never past a stream's limit by more than a read."""
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


def _alive(proc: str) -> bool:
    """A zombie is dead, awaiting its reaper, unless it is a leader whose threads live on (its
    main thread ended alone): that one still runs, and still dies with a SIGKILL to its pid."""
    with open(f"{proc}/stat", "rb") as f:
        if f.read().rsplit(b")", 1)[1].split()[0] != b"Z":
            return True
    with open(f"{proc}/status", "rb") as f:
        return any(line.startswith(b"Threads:") and int(line.split()[1]) > 1 for line in f)


def live_pids_of(uid: int | None = None, min_uid: int | None = None) -> list[int]:
    """Processes still running as `uid` (as their effective uid, which /proc/<pid> is owned by),
    or as any uid from `min_uid` up."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            owner = os.stat(entry.path).st_uid
            if ((owner == uid) if uid is not None else (owner >= min_uid)) and _alive(entry.path):
                pids.append(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return pids


def kill_uid(uid: int) -> None:
    """SIGKILL every process running as `uid`, until none is left (a fork bomb may still be
    forking while we look)."""
    for _ in range(200):
        pids = live_pids_of(uid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.001)


def remove_files_of(uid: int) -> None:
    """Without a mount namespace (the degraded mode), the program's files in the shared temp
    dirs are found by owner and removed."""
    for root in SHARED_TMP:
        try:
            entries = list(os.scandir(root))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except OSError:
                continue
