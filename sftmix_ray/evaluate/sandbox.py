"""Run untrusted, model-written Python in separate processes, under limits, with a hard kill.

Threat model. A code verdict must mean the tests ran, whatever the candidate does. A `Program`
(what `code.build_program` makes) therefore runs as two processes. The *candidate* process runs
the prompt and the model's code, then answers calls to the entry point over a pair of pipes. The
*harness* process runs only benchmark code (the prompt's helpers and the test code) and calls
`check` on a proxy whose calls cross the pipes as plain data (sandbox_wire.py: a tagged encoding
decoded without running anything). A reply that is not plain data, oversized or malformed, an
exception that is not an Exception (SystemExit), or the candidate's process ending breaks the
call, and no later call or `except Exception` in a test can undo that. The verdict is the
harness's own `passed`, written to a pipe only it holds once `check` has returned with no broken
call. The candidate's process holds no end of that pipe, runs as another uid (no signals, no
ptrace, no /proc/<pid>/fd or mem of the harness or the evaluator), in its own mount, network and
IPC namespaces: nothing it can inspect (globals, frames, gc, /proc/self, its fds) holds a pass
signal, and nothing it can write reaches one.
Guaranteed (as root): passed means `check` returned on the values the candidate's code computed;
those compare as the plain data they are, so an `__eq__` that always says True cannot cross; a
candidate that patches builtins, exits or crashes does so in its own process, and fails.
Not guaranteed: state the candidate keeps between calls is its own (it may count calls); it sees
the test inputs and may special-case them, which HumanEval's format cannot detect; a test that
inspects side effects on its arguments sees copies (no HumanEval test does). A plain source
string (`run_program("...")`) runs as one process whose pass (`done`, written after the program
returns) is the program's own word: for programs that test themselves, not for judging.

Layers around every process (sandbox_child.py sets them before the source runs):
- its own session, killed (SIGKILL, whole group) at the timeout and after a normal exit; as
  root, every process of its uid too (escapees included);
- limits: CPU time, address space, file size, open files, processes, no core dumps;
- output read as a stream with a capped tail; past `Limits.output_bytes` it is killed and fails;
- a scrubbed environment; network and IPC namespaces of its own;
- as root, a fresh uid with no capability at all, in a mount namespace where every inherited
  mount is read-only and /tmp, /var/tmp and /dev/shm are private tmpfs (each bounded by
  `Limits.scratch_bytes`), so nothing it writes outlives it; root-only directories stay closed,
  the interpreter's prefix under one (/root/.pyenv) being re-exposed read-only through a tmpfs
  that can be traversed but not listed;
- seccomp: no AF_UNIX socket (a filesystem socket is reachable through any namespace), no
  io_uring (it would bypass the filter), no syscalls of another ABI.
Records: `detail` is the tail of what the processes wrote, without control characters or ANSI
sequences, with the evaluator's secrets redacted, at most DETAIL_CHARS long.
Not guaranteed: world-readable files stay readable (nothing can leave: no network, and records
are capped and redacted), so do world-readable /proc entries of other processes (one pid
namespace). Degraded modes, named by `Outcome.layers`: as a non-root user there is no uid or
mount layer; the candidate runs as the evaluator's user, inside a user namespace where the
kernel allows (`userns`), which still keeps it from ptrace and /proc/<pid>/fd of the harness and
the evaluator; without one, it could write into the evaluator's pipes, so the verdict is not
guaranteed, and without `net` the network is reachable. Root without CAP_SYS_ADMIN (no mount
namespace) keeps CAP_DAC_READ_SEARCH so the library stays importable (`nocaps` is absent), and
the program's top-level files in /tmp, /var/tmp and /dev/shm are removed by owner afterwards.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..redact import redact
from .sandbox_launch import Process, Stream, close, drain, spawn, watch

_AS_ROOT = os.name == "posix" and os.geteuid() == 0
_SHARED_TMP = ("/tmp", "/var/tmp", "/dev/shm")
DETAIL_CHARS = 2000
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 5.0
    memory_bytes: int = 1 << 30
    file_size_bytes: int = 1 << 20
    processes: int = 16
    output_bytes: int = 64 << 10
    reply_bytes: int = 4 << 20  # one value the candidate returns, encoded
    scratch_bytes: int = 64 << 20  # each private tmpfs: /tmp, /var/tmp, /dev/shm


@dataclass(frozen=True)
class Outcome:
    passed: bool
    status: str  # passed | failed | timeout
    detail: str
    network_isolated: bool
    # what took effect: net, ipc, mounts, uid, nocaps, seccomp, userns (not root)
    layers: frozenset = frozenset()


@dataclass(frozen=True)
class Program:
    """Model code judged by benchmark tests: `solution` (untrusted) defines `entry_point`;
    `tests` (trusted: the prompt's helpers and the test code) defines `check(candidate)`."""
    solution: str
    tests: str
    entry_point: str


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


def _remove_files_of(uid: int) -> None:
    """Without a mount namespace (the degraded mode), the program's files in the shared temp
    dirs are found by owner and removed."""
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


def clean_detail(text: str) -> str:
    """Text fit for a record: control characters and ANSI sequences out (newline and tab stay),
    the evaluator's secrets redacted, then the last DETAIL_CHARS characters."""
    text = _CONTROL.sub("", _ANSI.sub("", text.replace("\r\n", "\n")))
    return redact(text)[-DETAIL_CHARS:]


def _start(program: Program | str, limits: Limits, workdir: str) -> list[Process]:
    """The processes of one run, the judging one first, each as a fresh uid of its own."""
    base = {"cpu": max(1, int(limits.timeout_s) + 1), "memory": limits.memory_bytes,
            "fsize": limits.file_size_bytes, "nproc": limits.processes,
            "scratch": limits.scratch_bytes}
    uid = _fresh_uid if _AS_ROOT else lambda: -1
    if isinstance(program, str):
        return [spawn("plain", program, {**base, "uid": uid()}, workdir, limits.output_bytes)]
    request_r, request_w = os.pipe()
    reply_r, reply_w = os.pipe()
    started: list[Process] = []
    try:
        started.append(spawn("candidate", program.solution,
                             {**base, "uid": uid(), "entry": program.entry_point,
                              "request": request_r, "reply": reply_w},
                             workdir, limits.output_bytes))
        started.insert(0, spawn("harness", program.tests,
                                {**base, "uid": uid(), "entry": program.entry_point,
                                 "request": request_w, "reply": reply_r,
                                 "reply_cap": limits.reply_bytes},
                                workdir, limits.output_bytes))
    except BaseException:
        _stop(started)
        close(started)
        raise
    finally:  # the evaluator holds no end of the wire: each side sees only the other's end
        for fd in (request_r, request_w, reply_r, reply_w):
            os.close(fd)
    return started


def _stop(processes: list[Process]) -> None:
    # The whole group, also after a normal exit: a program may leave children behind.
    for p in processes:
        try:
            os.killpg(p.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for p in processes:
        if p.uid >= 0:
            _kill_uid(p.uid)


def _layers(status: Stream) -> frozenset:
    for line in status.text().splitlines():
        if line.startswith("layers "):
            return frozenset(filter(None, line[len("layers "):].split(",")))
    return frozenset()


def _outcome(passed: bool, status: str, detail: str, layers: frozenset) -> Outcome:
    return Outcome(passed, status, detail, "net" in layers, layers)


def _failure_detail(processes: list[Process]) -> str:
    if len(processes) == 1:
        text = processes[0].output.text()
    else:  # the candidate's output, then the tests' traceback: the tail keeps the latter
        named = (("candidate", processes[1]), ("tests", processes[0]))
        text = "\n".join(f"{name}:\n{p.output.text().rstrip()}" for name, p in named
                         if p.output.total)
    return clean_detail(text.rstrip()) or f"exit code {processes[0].popen.returncode}"


def _verdict(processes: list[Process], ended: str | Stream, limits: Limits) -> Outcome:
    judge, untrusted = processes[0], processes[-1]
    layers = _layers(untrusted.status)
    if ended == "timeout":
        return _outcome(False, "timeout", f"killed after {limits.timeout_s}s", layers)
    over = next((s for p in processes for s in (p.output, p.status) if s.over), None)
    if over is not None:
        return _outcome(False, "failed", f"output over {over.cap} bytes", layers)
    word = "passed" if len(processes) == 2 else "done"
    if judge.popen.returncode == 0 and word in judge.status.text().splitlines():
        return _outcome(True, "passed", "", layers)
    return _outcome(False, "failed", _failure_detail(processes), layers)


def run_program(program: Program | str, limits: Limits = Limits()) -> Outcome:
    """Run `program` (two processes) or a plain source (one) under `limits`."""
    with tempfile.TemporaryDirectory(prefix="sftmix-sbx-") as workdir:
        deadline = time.monotonic() + limits.timeout_s
        processes = _start(program, limits, workdir)
        streams = [s for p in processes for s in (p.output, p.status)]
        try:
            ended = watch(processes[0], streams, deadline)
        finally:
            _stop(processes)
            drain(streams)
            close(processes)
        for p in processes:
            if p.uid >= 0 and "mounts" not in _layers(p.status):
                _remove_files_of(p.uid)
        if _AS_ROOT:
            # Files the program made in its own directory (degraded mode) may be closed to
            # root's cleanup by mode, never by ownership: give them back before the dir goes.
            for path in Path(workdir).rglob("*"):
                try:
                    os.lchown(path, 0, 0)
                except OSError:
                    pass
    return _verdict(processes, ended, limits)


def run_programs(sources: list[Program | str], limits: Limits = Limits(),
                 workers: int | None = None) -> list[Outcome]:
    """Programs run in parallel, one thread each; threads only wait on their processes."""
    workers = workers or max(1, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda s: run_program(s, limits), sources))
