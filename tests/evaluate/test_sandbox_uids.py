"""Fresh uids are distinct however many programs run at once, never one that still has
processes, and every process of a program's uid ends with it, even one whose main thread left
alone (a zombie leader whose other threads still run)."""

import itertools
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from sftmix_ray.evaluate import sandbox
from sftmix_ray.evaluate.sandbox import Program, run_programs

uid_layer = pytest.mark.skipif(not sandbox.uid_layer(), reason="fresh uids exist only as root")


@pytest.fixture
def next_uid(monkeypatch):
    """The uid `_fresh_uid` tries next, made known: the run restarts at a fixed point."""
    start = sandbox._UID_COUNT - 10  # near the end of the range, so the wrap is crossed too
    monkeypatch.setattr(sandbox, "_uid_start", start)
    monkeypatch.setattr(sandbox, "_uid_counter", itertools.count())
    return sandbox._UID_FIRST + start


def test_fresh_uids_are_distinct_across_threads():
    got: list[int] = []
    lock = threading.Lock()

    def take():
        mine = [sandbox._fresh_uid() for _ in range(100)]
        with lock:
            got.extend(mine)

    threads = [threading.Thread(target=take) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == len(set(got)) == 1600
    assert all(sandbox._UID_FIRST <= u < sandbox._UID_FIRST + sandbox._UID_COUNT for u in got)


def test_a_busy_uid_is_skipped_and_the_run_wraps(monkeypatch, next_uid):
    busy = {next_uid, next_uid + 1, next_uid + 3, sandbox._UID_FIRST}  # the last: past the wrap
    monkeypatch.setattr(sandbox, "live_pids_of", lambda uid: [1] if uid in busy else [])
    got = [sandbox._fresh_uid() for _ in range(10)]
    assert got[:2] == [next_uid + 2, next_uid + 4]
    assert sandbox._UID_FIRST not in got and sandbox._UID_FIRST + 1 in got  # wrapped, skipped
    assert not busy & set(got)


@uid_layer
@pytest.mark.skipif(not shutil.which("setpriv"), reason="setpriv is not installed")
def test_a_uid_with_a_live_process_is_skipped(next_uid):
    sleepers = [subprocess.Popen(["setpriv", f"--reuid={u}", f"--regid={u}", "--clear-groups",
                                  "sleep", "60"]) for u in (next_uid, next_uid + 2)]
    try:
        deadline = time.monotonic() + 10
        while not all(sandbox.live_pids_of(u) for u in (next_uid, next_uid + 2)):
            assert all(s.poll() is None for s in sleepers) and time.monotonic() < deadline
            time.sleep(0.01)
        assert [sandbox._fresh_uid() for _ in range(2)] == [next_uid + 1, next_uid + 3]
    finally:
        for s in sleepers:
            s.kill()
            s.wait()


def _threads_of(uids: list[int]) -> list[str]:
    """Every live thread running as one of `uids`, read task by task (a zombie leader's live
    threads included)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for task in (proc / "task").iterdir():
                fields = dict(line.split(":", 1) for line in
                              (task / "status").read_text().splitlines() if ":" in line)
                if (int(fields["Uid"].split()[0]) in uids
                        and not fields["State"].strip().startswith("Z")):
                    found.append(f"{proc.name}/task/{task.name}")
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


@uid_layer
@pytest.mark.skipif(os.uname().machine not in ("x86_64", "aarch64"), reason="exit's number")
def test_an_escapee_whose_main_thread_left_is_killed_too(uids):
    exit_nr = {"x86_64": 60, "aarch64": 93}[os.uname().machine]
    escape = ("import ctypes, os, threading, time\n"
              "if os.fork() == 0:\n    os.setsid()\n"
              "    threading.Thread(target=time.sleep, args=(600,)).start()\n"
              f"    ctypes.CDLL(None).syscall({exit_nr}, 0)  # ends the main thread alone\n"
              "time.sleep(0.3)\n")
    outcomes = run_programs([escape, Program(escape + "def f():\n    return 1\n",
                                             "def check(c):\n    assert c() == 1\n", "f")])
    assert all(o.passed for o in outcomes), [o.detail for o in outcomes]
    assert len(uids) == 3 and not _threads_of(uids)
