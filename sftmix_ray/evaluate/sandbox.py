"""Run untrusted, model-written Python in a separate process, under limits, with a hard kill.

Each program gets its own process group and private temporary directory, a scrubbed environment,
resource limits (CPU time, address space, file size, open files, processes) applied inside the child
before the program is read, and a network namespace of its own where the kernel lets us make one.
The program text arrives on stdin, never on disk, after a random nonce; success is the nonce echoed
by the launcher *after* the program returns, so `sys.exit(0)` or `os._exit(0)` mid-way is a failure.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

_LAUNCHER = r"""
import ctypes, resource, sys
cpu, mem, fsize, nproc = (int(v) for v in sys.argv[1:5])
for lim, val in ((resource.RLIMIT_CPU, cpu), (resource.RLIMIT_AS, mem),
                 (resource.RLIMIT_FSIZE, fsize), (resource.RLIMIT_NPROC, nproc),
                 (resource.RLIMIT_NOFILE, 64), (resource.RLIMIT_CORE, 0)):
    resource.setrlimit(lim, (val, val))
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
isolated = libc.unshare(CLONE_NEWNET) == 0 or libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0
nonce = sys.stdin.readline().strip()
source = sys.stdin.read()
sys.stdin.close()
del sys.argv[1:]
exec(compile(source, "program.py", "exec"), {"__name__": "__main__"})
sys.stdout.flush()
sys.__stdout__.write("\n" + nonce + ("+net" if isolated else "") + "\n")
sys.__stdout__.flush()
"""


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
    with tempfile.TemporaryDirectory(prefix="sftmix-sbx-") as workdir:
        env = {"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}
        cpu = max(1, int(limits.timeout_s) + 1)
        cmd = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(cpu), str(limits.memory_bytes),
               str(limits.file_size_bytes), str(limits.processes)]
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            out, err = proc.communicate(f"{nonce}\n{source}".encode(), timeout=limits.timeout_s)
            status = None
        except subprocess.TimeoutExpired:
            status = "timeout"
            out, err = b"", b""
        finally:
            # Kill the whole group, also after a normal exit: a program may leave children behind.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if status == "timeout":
                out, err = proc.communicate()
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
