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
Guaranteed (with `uid` or `userns`, see below): passed means `check` returned on the values the
candidate's code computed; those compare as the plain data they are, so an `__eq__` that always
says True cannot cross; a candidate that patches builtins, exits or crashes does so in its own
process, and fails.
Not guaranteed: state the candidate keeps between calls is its own (it may count calls); it sees
the test inputs and may special-case them, which HumanEval's format cannot detect; a test that
inspects side effects on its arguments sees copies (no HumanEval test does). A plain source
string (`run_program("...")`) runs as one process whose pass (`done`, written after the program
returns) is the program's own word: for programs that test themselves, not for judging.

Layers around every process (sandbox_child.py sets them before the source runs), each named in
`Outcome.layers` when it took effect:
- its own session, killed (SIGKILL, whole group) at the timeout and after a normal exit; with
  `uid`, every process of its uid too (escapees included);
- limits: CPU time, address space, file size, open files, processes, no core dumps;
- output read as a stream, keeping a tail of `Limits.output_bytes`; past the much larger
  `Limits.output_kill_bytes` it is killed and fails;
- a scrubbed environment; `net` and `ipc`: network and IPC namespaces of its own;
- `uid`: a fresh uid (never one with live processes) and `nocaps`: no capability in any set, the
  bounding set emptied; `mounts`: a mount namespace where every inherited mount is read-only and
  /tmp, /var/tmp and /dev/shm are private tmpfs (each bounded by `Limits.scratch_bytes`), so
  nothing it writes outlives it; root-only directories stay closed, the interpreter's prefix
  under one (/root/.pyenv) being re-exposed read-only through a tmpfs that can be traversed but
  not listed (without `mounts`, through a directory handle: no mode keeps CAP_DAC_READ_SEARCH,
  which would open every file on the machine to the program);
- `seccomp`: no AF_UNIX socket (a filesystem socket is reachable through any namespace), no
  io_uring (it would bypass the filter), no keyring calls (add_key, request_key, keyctl: a key
  outlives the run), no open_by_handle_at, no syscalls of another ABI.
Records: `detail` is the tail of what the processes wrote, without control characters or ANSI
sequences, with the evaluator's secrets redacted, at most DETAIL_CHARS long.
Not guaranteed in any mode: world-readable files stay readable (with `net` nothing can leave,
and records are capped and redacted), so do world-readable /proc entries of other processes (one
pid namespace); the kernel's own attack surface is reduced only by the calls the filter refuses.

What holds in each mode (a missing layer names it). Root in full: every layer above; the
verdict is guaranteed. Root without CAP_SYS_ADMIN, or with unshare or mount refused by seccomp
or AppArmor (no `mounts`, and no `net`/`ipc` if those are refused too): still a fresh uid with
no capability, so the verdict holds; it writes wherever other users may (its top-level entries
in /tmp, /var/tmp and /dev/shm are removed by owner afterwards, deeper ones in others'
world-writable trees stay), its SysV IPC objects outlive it without `ipc`, and without `net` the
network is reachable. Root without CAP_SETPCAP (no `nocaps`): the bounding set stays, but the
program holds no capability and no_new_privs keeps exec from granting any. Root where fresh uids
cannot be used (a rootless container, where chown to an unmapped uid fails; CAP_SETUID,
CAP_SETGID, CAP_CHOWN or CAP_KILL missing), and any non-root user: no `uid`. The program runs as
the evaluator's uid (root's with every capability cleared), so it can signal (kill, stop) every
process of that real uid it can see (no pid namespace), the evaluator and pytest included, and
read and write what that uid may outside read-only mounts; its escapees are ended with its
session only. Inside a user namespace
(`userns`) it cannot ptrace or open /proc/<pid>/fd of the harness or the evaluator (the kernel
asks for the same user namespace or a capability over the target's), so the verdict holds;
without `userns` it could write into the evaluator's pipes: the verdict is not guaranteed, and
code.py logs a warning. Where a sandbox cannot be built as the layers above say (a mount refused
after the first, a uid change refused), `run_programs` raises SandboxError naming the cause
rather than scoring every program 0.
"""

from __future__ import annotations

import errno
import functools
import itertools
import os
import re
import secrets
import signal
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..redact import redact
from .sandbox_launch import (
    Process,
    Stream,
    close,
    drain,
    kill_uid,
    live_pids_of,
    remove_files_of,
    spawn,
    watch,
)

_AS_ROOT = os.name == "posix" and os.geteuid() == 0
DETAIL_CHARS = 2000
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Fresh uids: far above any real account, below (uid_t)-1. Each evaluator process walks its own
# run from a random start, so two evaluators (a sweep's trials) meet only if their runs overlap,
# and a uid that still has processes is skipped in any case.
_UID_FIRST, _UID_COUNT = 1_500_000_000, 2_000_000_000
_uid_start = secrets.randbelow(_UID_COUNT)
_uid_counter = itertools.count()  # next() is atomic under the GIL: threads get distinct values
_CAP_CHOWN, _CAP_KILL, _CAP_SETGID, _CAP_SETUID = 0, 5, 6, 7


class SandboxError(RuntimeError):
    """The sandbox could not be built as its layers say: no program can be judged, so the whole
    evaluation stops here instead of scoring every program 0."""


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 5.0
    memory_bytes: int = 1 << 30
    file_size_bytes: int = 1 << 20
    processes: int = 16
    output_bytes: int = 64 << 10  # the tail kept for the record
    output_kill_bytes: int = 8 << 20  # past this much output a program is killed and fails
    reply_bytes: int = 4 << 20  # one value the candidate returns, encoded
    scratch_bytes: int = 64 << 20  # each private tmpfs: /tmp, /var/tmp, /dev/shm


@dataclass(frozen=True)
class Outcome:
    passed: bool
    status: str  # passed | failed | timeout
    detail: str
    network_isolated: bool
    # what took effect: net, ipc, mounts, uid, nocaps, seccomp, userns
    layers: frozenset = frozenset()


@dataclass(frozen=True)
class Program:
    """Model code judged by benchmark tests: `solution` (untrusted) defines `entry_point`;
    `tests` (trusted: the prompt's helpers and the test code) defines `check(candidate)`."""
    solution: str
    tests: str
    entry_point: str


def _fresh_uid() -> int:
    for _ in range(1000):
        uid = _UID_FIRST + (_uid_start + next(_uid_counter)) % _UID_COUNT
        if not live_pids_of(uid):
            return uid
    raise SandboxError("no free uid among 1000 tried")


@functools.cache
def _fresh_uids_work() -> bool:
    """Whether this root can hand programs uids of their own: it holds the capabilities that
    takes, and the kernel maps such uids (in a rootless container, chown to an unmapped uid
    fails with EINVAL)."""
    with open("/proc/self/status") as f:
        held = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    if any(not held >> cap & 1 for cap in (_CAP_CHOWN, _CAP_KILL, _CAP_SETGID, _CAP_SETUID)):
        return False
    fd, path = tempfile.mkstemp(prefix="sftmix-sbx-probe-")
    try:
        os.fchown(fd, _UID_FIRST - 1, _UID_FIRST - 1)  # as unmapped as any fresh uid, never one
        return True
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EPERM):
            return False
        raise
    finally:
        os.close(fd)
        os.unlink(path)


def uid_layer() -> bool:
    """Whether programs run as fresh uids here (the `uid` layer)."""
    return _AS_ROOT and _fresh_uids_work()


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
    uid = _fresh_uid if uid_layer() else lambda: -1
    output = (limits.output_bytes, limits.output_kill_bytes)
    if isinstance(program, str):
        return [spawn("plain", program, {**base, "uid": uid()}, workdir, output)]
    request_r, request_w = os.pipe()
    reply_r, reply_w = os.pipe()
    started: list[Process] = []
    try:
        started.append(spawn("candidate", program.solution,
                             {**base, "uid": uid(), "entry": program.entry_point,
                              "request": request_r, "reply": reply_w}, workdir, output))
        started.insert(0, spawn("harness", program.tests,
                                {**base, "uid": uid(), "entry": program.entry_point,
                                 "request": request_w, "reply": reply_r,
                                 "reply_cap": limits.reply_bytes}, workdir, output))
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
            kill_uid(p.uid)


def _layers(status: Stream) -> frozenset:
    for line in status.text().splitlines():
        if line.startswith("layers "):
            return frozenset(filter(None, line[len("layers "):].split(",")))
    return frozenset()


def _check_confined(processes: list[Process], ended: str | Stream) -> None:
    """SandboxError where a process could not be confined: it said why (`error <cause>`, the
    first thing on its status pipe, written before any program source is read), or the judging
    one exited with an error before saying anything (the launcher itself failed)."""
    for p in processes:
        first = p.status.text().partition("\n")[0]
        if first.startswith("error "):
            raise SandboxError(f"the sandbox could not confine a program: {first[6:]}")
    judge = processes[0]
    if ended == "exited" and not judge.status.total and (judge.popen.returncode or 0) > 0:
        raise SandboxError("the sandbox launcher failed before confining a program: "
                           + clean_detail(judge.output.text())[-500:])


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
    # the untrusted process's own layers; the judge's where it was stopped before it wrote them
    # (it then ran none of its source, which comes after)
    layers = _layers(untrusted.status) or _layers(judge.status)
    if ended == "timeout":
        return _outcome(False, "timeout", f"killed after {limits.timeout_s}s", layers)
    over = next((f"output over {p.output.limit} bytes (Limits.output_kill_bytes)"
                 if p.output.over else f"status over {p.status.limit} bytes"
                 for p in processes if p.output.over or p.status.over), None)
    if over is not None:
        return _outcome(False, "failed", over, layers)
    word = "passed" if len(processes) == 2 else "done"
    if judge.popen.returncode == 0 and word in judge.status.text().splitlines():
        return _outcome(True, "passed", "", layers)
    return _outcome(False, "failed", _failure_detail(processes), layers)


def run_program(program: Program | str, limits: Limits = Limits()) -> Outcome:
    """Run `program` (two processes) or a plain source (one) under `limits`; SandboxError where
    no sandbox could be built."""
    with tempfile.TemporaryDirectory(prefix="sftmix-sbx-") as workdir:
        # traversable, not listable: without a mount namespace a program's own directory inside
        # is reached through it by path (TMPDIR), and no capability bypasses a closed one
        os.chmod(workdir, 0o711)
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
                remove_files_of(p.uid)
        if any(p.uid >= 0 for p in processes):
            # Files the program made in its own directory (degraded mode) may be closed to
            # root's cleanup by mode, never by ownership: give them back before the dir goes.
            for path in Path(workdir).rglob("*"):
                try:
                    os.lchown(path, 0, 0)
                except OSError:
                    pass
    _check_confined(processes, ended)
    return _verdict(processes, ended, limits)


def run_programs(sources: list[Program | str], limits: Limits = Limits(),
                 workers: int | None = None) -> list[Outcome]:
    """Programs run in parallel, one thread each; threads only wait on their processes. The
    first SandboxError stops the programs not yet started and is raised here."""
    workers = workers or max(1, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_program, s, limits) for s in sources]
        try:
            return [f.result() for f in futures]
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
