"""Run untrusted, model-written Python in a separate process, under limits, with a hard kill.

Layers, and why each exists:
- one process per program, in its own process group, killed (SIGKILL, whole group) at the timeout
  and after a normal exit too, since a program may leave children behind;
- resource limits set inside the child before the program is read: CPU time (infinite loops),
  address space (memory hogs), file size, open files, processes (fork bombs), no core dumps;
- a private temporary directory as cwd/HOME/TMPDIR and a scrubbed environment;
- a network namespace of its own (no interfaces but a down loopback) where the kernel allows it;
- when the evaluator runs as root (containers, CI), the program runs as a fresh unprivileged uid
  of its own. Root ignores RLIMIT_NPROC, may kill its parent and may write anywhere; the fresh uid
  makes the process limit bind, makes the evaluator unkillable by it and its files unwritable.
  It keeps one capability, CAP_DAC_READ_SEARCH, so the interpreter can still import the standard
  library from a root-only prefix (e.g. /root/.pyenv); `no_new_privs` blocks regaining more.
  After the run every process of that uid is killed (escapees from the process group included)
  and its files in the world-writable temp dirs are removed;
- the program arrives on stdin, never on disk, after a random nonce; success is the nonce echoed
  by the launcher *after* the program returns, so `sys.exit(0)` or `os._exit(0)` mid-way fails.
Not guaranteed: reading world- or root-readable files (the network is gone, so nothing leaves),
and, as a non-root user without user namespaces, the uid and network layers are skipped (the
outcome's `network_isolated` says which).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

_LAUNCHER = r"""
import ctypes, os, resource, sys
cpu, mem, fsize, nproc, uid = (int(v) for v in sys.argv[1:6])
for lim, val in ((resource.RLIMIT_CPU, cpu), (resource.RLIMIT_AS, mem),
                 (resource.RLIMIT_FSIZE, fsize), (resource.RLIMIT_NPROC, nproc),
                 (resource.RLIMIT_NOFILE, 64), (resource.RLIMIT_CORE, 0)):
    resource.setrlimit(lim, (val, val))
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
isolated = libc.unshare(CLONE_NEWNET) == 0 or (uid < 0 and
                                                libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0)
if uid >= 0:
    PR_SET_KEEPCAPS, PR_SET_NO_NEW_PRIVS, CAP_DAC_READ_SEARCH = 8, 38, 2
    libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    keep = 1 << CAP_DAC_READ_SEARCH
    data = (ctypes.c_uint32 * 6)(keep, keep, 0, 0, 0, 0)
    if libc.capset(header, data) != 0:
        raise SystemExit("sandbox: capset failed")
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
nonce = sys.stdin.readline().strip()
source = sys.stdin.read()
sys.stdin.close()
del sys.argv[1:]
exec(compile(source, "program.py", "exec"), {"__name__": "__main__"})
sys.stdout.flush()
sys.__stdout__.write("\n" + nonce + ("+net" if isolated else "") + "\n")
sys.__stdout__.flush()
"""
_AS_ROOT = os.name == "posix" and os.geteuid() == 0
_SHARED_TMP = ("/tmp", "/var/tmp", "/dev/shm")


def _fresh_uid() -> int:
    # Far above any real account; a collision between two concurrent programs is ~1e-8.
    return 1_500_000_000 + secrets.randbelow(100_000_000)


def live_pids_of(uid: int | None = None, min_uid: int | None = None) -> list[int]:
    """Processes (zombies excluded: they are dead, awaiting their reaper) of `uid`, or of any uid
    from `min_uid` up."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            owner = os.stat(entry.path).st_uid
            if (owner == uid) if uid is not None else (owner >= min_uid):
                with open(f"{entry.path}/stat", "rb") as f:
                    state = f.read().rsplit(b")", 1)[1].split()[0]
                if state != b"Z":
                    pids.append(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return pids


def _kill_uid(uid: int) -> None:
    """SIGKILL every process running as `uid`, until none is left (a fork bomb may still be
    forking while we look)."""
    for _ in range(50):
        pids = live_pids_of(uid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _remove_files_of(uid: int) -> None:
    for root in _SHARED_TMP:
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


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 5.0
    memory_bytes: int = 1 << 30
    file_size_bytes: int = 1 << 20
    processes: int = 16
    output_bytes: int = 64 << 10


@dataclass(frozen=True)
class Outcome:
    passed: bool
    status: str  # passed | failed | timeout
    detail: str
    network_isolated: bool


def run_program(source: str, limits: Limits = Limits()) -> Outcome:
    nonce = secrets.token_hex(16)
    uid = _fresh_uid() if _AS_ROOT else -1
    with tempfile.TemporaryDirectory(prefix="sftmix-sbx-") as workdir:
        if uid >= 0:
            os.chown(workdir, uid, uid)
        env = {"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}
        cpu = max(1, int(limits.timeout_s) + 1)
        cmd = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(cpu), str(limits.memory_bytes),
               str(limits.file_size_bytes), str(limits.processes), str(uid)]
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        status = None
        try:
            out, err = proc.communicate(f"{nonce}\n{source}".encode(), timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            status = "timeout"
            out, err = b"", b""
        finally:
            # Kill the whole group, also after a normal exit: a program may leave children behind.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if uid >= 0:
                _kill_uid(uid)
            if status == "timeout":
                out, err = proc.communicate()
        if uid >= 0:
            _remove_files_of(uid)
            # Files the program made in its own directory may be read-only to root's cleanup
            # only by mode, never by ownership: give them back before the directory goes.
            for path in Path(workdir).rglob("*"):
                try:
                    os.lchown(path, 0, 0)
                except OSError:
                    pass
    if status == "timeout":
        return Outcome(False, "timeout", f"killed after {limits.timeout_s}s", False)
    tail = out[-limits.output_bytes:].decode("utf-8", "replace").rstrip().splitlines()
    last = tail[-1] if tail else ""
    ok = proc.returncode == 0 and last.startswith(nonce)
    detail = "" if ok else err[-2000:].decode("utf-8", "replace") or f"exit code {proc.returncode}"
    return Outcome(ok, "passed" if ok else "failed", detail, last.endswith("+net"))


def run_programs(sources: list[str], limits: Limits = Limits(), workers: int | None = None
                 ) -> list[Outcome]:
    """Programs run in parallel, one process each; threads only wait on their subprocess."""
    workers = workers or max(1, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda s: run_program(s, limits), sources))
