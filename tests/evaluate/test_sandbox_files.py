"""A program reads nothing root-only, holds no capability, reaches no filesystem socket, leaves
nothing behind (files, IPC objects, processes), and what it prints reaches the records capped,
printable and redacted."""

import os
import random
import secrets
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from sftmix_ray.evaluate import sandbox
from sftmix_ray.evaluate.code import score_code
from sftmix_ray.evaluate.sandbox import (
    DETAIL_CHARS,
    Limits,
    Program,
    clean_detail,
    live_pids_of,
    run_program,
    run_programs,
)

root_only = pytest.mark.skipif(not sandbox.uid_layer(),
                               reason="the uid and mount layers exist only as root")
SECRET = "sk-test-4f9a1b2c3d4e5f60718293a4b5c6d7e8"


@pytest.fixture
def shared_tmp():
    """A world-writable tree in the real /tmp, as Ray's session folders are during a sweep."""
    path = Path(tempfile.mkdtemp(prefix="sftmix-sbx-test-", dir="/tmp"))
    (path / "a" / "b").mkdir(parents=True)
    for p in (path, path / "a", path / "a" / "b"):
        os.chmod(p, 0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@root_only
def test_a_program_reads_nothing_root_only_and_holds_no_capability(visible_dir):
    closed = visible_dir / "closed"
    closed.mkdir()
    os.chmod(closed, 0o700)
    for path in (closed / "secret.txt", visible_dir / "secret.txt"):
        path.write_text("root only")
        os.chmod(path, 0o600)
    probes = [f"open({str(closed / 'secret.txt')!r}).read()",
              f"import os\nos.listdir({str(closed)!r})",
              f"open({str(visible_dir / 'secret.txt')!r}).read()",
              "import os\nos.listdir('/root')",
              "open('/proc/1/environ').read()"]
    caps = ("caps = {k: v.strip() for k, v in (l.split(':') for l in open('/proc/self/status'))"
            " if k.startswith('Cap')}\nassert set(caps.values()) == {'0000000000000000'}, caps\n")
    stdlib = ("import json, re, math, collections, hashlib, itertools, fractions, decimal, heapq\n"
              "import string\nassert hashlib.sha256(b'x').hexdigest()[:4] == '2d71'\n"
              "assert decimal.Decimal('0.1') * 3 == decimal.Decimal('0.3')\n"
              "assert fractions.Fraction(1, 3) * 3 == 1 and list(itertools.chain([1], [2]))\n"
              "assert collections.Counter('aab')['a'] == 2\n"
              "assert json.loads(json.dumps({'a': [math.pi]}))['a'][0] == math.pi\n"
              "assert heapq.nsmallest(1, [3, 1]) == [1] and re.match('a', string.ascii_letters)\n")
    outcomes = run_programs([*probes, caps, stdlib], Limits(timeout_s=5), workers=2)
    for probe, outcome in zip(probes, outcomes):
        assert not outcome.passed and "PermissionError: [Errno 13]" in outcome.detail, probe
    assert outcomes[-2].passed, outcomes[-2].detail
    assert outcomes[-1].passed, outcomes[-1].detail
    assert {"uid", "nocaps", "mounts", "net", "ipc", "seccomp"} <= outcomes[-1].layers


def _owned_by(uids, roots) -> list[str]:
    found = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                if os.lstat(path).st_uid in uids:
                    found.append(path)
    return found


@root_only
def test_nothing_a_program_writes_outlives_it(visible_dir, shared_tmp, uids):
    tag = f"sftmix-sbx-probe-{secrets.token_hex(4)}"
    private = [str(shared_tmp / "a" / "b" / tag), f"/tmp/{tag}", f"/var/tmp/{tag}/deep/x",
               f"/dev/shm/{tag}"]
    opened = visible_dir / "open"
    opened.mkdir()
    os.chmod(opened, 0o777)
    key = random.randrange(1 << 20, 1 << 30)
    program = (
        "import ctypes, errno, os, time\n"
        f"for path in {private!r}:\n"
        "    os.makedirs(os.path.dirname(path), exist_ok=True)\n"
        "    open(path, 'w').write('x')\n"
        "try:\n"
        f"    open({str(opened / tag)!r}, 'w')\n"
        "except OSError as e:\n"
        "    assert e.errno == errno.EROFS, e\n"
        "else:\n"
        "    raise AssertionError('wrote outside the scratch space')\n"
        f"assert ctypes.CDLL(None).shmget({key}, 4096, 0o1600) >= 0  # a SysV segment\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    time.sleep(600)\n")
    scratch = ("import errno\ntotal = 0\ntry:\n    for i in range(1000):\n"
               "        with open(f'/dev/shm/f{i}', 'wb') as f:\n"
               "            f.write(b'x' * 1000000)\n        total += 1000000\n"
               "except OSError as e:\n    assert e.errno == errno.ENOSPC, e\n"
               f"assert 0 < total <= {Limits().scratch_bytes}, total\n")
    outcomes = run_programs([program, scratch], Limits(timeout_s=10), workers=2)
    assert all(o.passed for o in outcomes), [o.detail for o in outcomes]
    for path in private:
        assert not os.path.exists(path.split(tag)[0] + tag), path
    assert not list(opened.iterdir()) and not list((shared_tmp / "a" / "b").iterdir())
    with open("/proc/sysvipc/shm") as f:
        assert not [line for line in f if line.split()[0] == str(key)]
    assert len(uids) == 2 and not any(live_pids_of(uid) for uid in uids)
    tops = [e.path for d in ("/tmp", "/var/tmp", "/dev/shm") for e in os.scandir(d)
            if e.stat(follow_symlinks=False).st_uid in uids]
    assert not tops and not _owned_by(uids, [shared_tmp, visible_dir])


@root_only
def test_unix_sockets_are_refused_wherever_they_live(visible_dir, shared_tmp):
    opened = visible_dir / "open"
    opened.mkdir()
    os.chmod(opened, 0o777)
    addresses = [str(opened / "s.sock"), str(shared_tmp / "a" / "s.sock"),
                 f"\0sftmix-sbx-{secrets.token_hex(4)}"]
    servers = []
    for address in addresses:
        server = socket.socket(socket.AF_UNIX)
        server.bind(address)
        if not address.startswith("\0"):
            os.chmod(address, 0o777)
        server.listen(4)
        server.settimeout(0.3)
        servers.append(server)
    try:
        raw = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
               "if {call} < 0:\n    raise PermissionError(ctypes.get_errno(), 'refused')\n")
        outcomes = run_programs(
            [f"import socket\nsocket.socket(socket.AF_UNIX).connect({a!r})\n" for a in addresses]
            + [raw.format(call="libc.socket(1, 1, 0)"),  # AF_UNIX, not through the socket module
               raw.format(call="libc.syscall(425, 8, ctypes.create_string_buffer(120))")],
            Limits(timeout_s=5), workers=2)  # the last: io_uring, which would bypass the filter
        for address, outcome in zip(addresses + ["libc socket", "io_uring"], outcomes):
            assert not outcome.passed and "PermissionError: [Errno 13]" in outcome.detail, address
            assert "seccomp" in outcome.layers
        for server in servers:
            with pytest.raises(socket.timeout):
                server.accept()
    finally:
        for server in servers:
            server.close()


@pytest.mark.parametrize("raw,clean", [
    ("plain\ttext\nline", "plain\ttext\nline"),
    ("\x1b[31mred\x1b[0m \x1b]0;title\x07done", "red done"),
    ("bell\x07 nul\x00 del\x7f c1\x9b", "bell nul del c1"),
    ("over\rwrite\r\n", "overwrite\n"),
    ("x" * 5000 + "END", "x" * (DETAIL_CHARS - 3) + "END"),
])
def test_clean_detail_keeps_printable_text_only(raw, clean):
    assert clean_detail(raw) == clean


def test_records_are_capped_clean_and_redacted(monkeypatch):
    monkeypatch.setenv("SFTMIX_JUDGE_API_KEY", SECRET)
    noisy = ("import sys\nsys.stdout.buffer.write(bytes(range(256)) * 40)\n"
             "print('\\x1b[1;31mERROR\\x1b[0m\\r' + 'y' * 3000)\n"
             "raise ValueError('the end')\n")
    leaky = f"print('key:', {SECRET!r})\nraise SystemExit(1)\n"
    returned = Program(f"def f():\n    return {SECRET!r}\n",
                       "def check(candidate):\n    assert candidate() == 'x', candidate()\n", "f")
    outcomes = run_programs([noisy, leaky, returned])
    assert all(not o.passed for o in outcomes)
    detail = outcomes[0].detail
    assert len(detail) <= DETAIL_CHARS and detail.endswith("ValueError: the end")
    assert not [c for c in detail if ord(c) < 32 and c not in "\n\t"] and "\x7f" not in detail
    for outcome in outcomes[1:]:
        assert SECRET not in outcome.detail and "[redacted]" in outcome.detail
    problem = {"task_id": "t/0", "prompt": "def f():\n", "entry_point": "f",
               "test": "def check(candidate):\n    assert candidate() == 1\n"}
    _, records = score_code([[f"    print({SECRET!r} * 100)\n    return 2\n"]], [problem])
    assert records[0]["verdict"] == "failed" and SECRET not in records[0]["detail"]
    assert "[redacted]" in records[0]["detail"] and len(records[0]["detail"]) <= DETAIL_CHARS


def test_without_fresh_uids_programs_run_and_the_layers_say_so(monkeypatch):
    """Where fresh uids cannot be used (not root; a rootless container, where chown to an
    unmapped uid fails), programs run as the evaluator's uid holding no capability, still pass,
    and `layers` names what is missing, as `network_isolated` does for the network."""
    monkeypatch.setattr(sandbox, "_fresh_uids_work", lambda: False)
    assert not sandbox.uid_layer()
    caps = ("caps = {k: v.strip() for k, v in (l.split(':') for l in open('/proc/self/status'))"
            " if k in ('CapInh', 'CapPrm', 'CapEff', 'CapAmb')}\n"
            "assert set(caps.values()) == {'0000000000000000'}, caps\n")
    outcomes = [run_program("x = 1\n"), run_program(caps),
                run_program(Program("import json\ndef f():\n    return json.loads('1')\n",
                                    "def check(c):\n    assert c() == 1\n", "f"))]
    for outcome in outcomes:
        assert outcome.passed, outcome.detail
        assert "uid" not in outcome.layers and "seccomp" in outcome.layers
        assert outcome.network_isolated == ("net" in outcome.layers)


# (add_key, request_key, keyctl, open_by_handle_at, getpid) per machine
_NUMBERS = {"x86_64": (248, 249, 250, 304, 39), "aarch64": (217, 218, 219, 265, 172)}


@pytest.mark.skipif(os.uname().machine not in _NUMBERS, reason="syscall numbers for this machine")
def test_keyrings_and_file_handles_are_refused():
    """A key added to the uid's or the session keyring would outlive the run (the session keyring
    is the evaluator's); open_by_handle_at opens files past every path check."""
    add_key, request_key, keyctl, by_handle, getpid = _NUMBERS[os.uname().machine]
    raw = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
           "if {call} < 0:\n    raise PermissionError(ctypes.get_errno(), 'refused')\n")
    calls = {
        "add_key, user keyring": f"libc.syscall({add_key}, b'user', b'sftmix', b'v', 1, -4)",
        "add_key, session keyring": f"libc.syscall({add_key}, b'user', b'sftmix', b'v', 1, -3)",
        "request_key": f"libc.syscall({request_key}, b'user', b'sftmix', None, -4)",
        "keyctl, a new session keyring": f"libc.syscall({keyctl}, 1, None)",
        "open_by_handle_at": f"libc.syscall({by_handle}, -100, "
                             "ctypes.create_string_buffer(136), 0)",
    }
    outcomes = run_programs([raw.format(call=c) for c in
                             [*calls.values(), f"libc.syscall({getpid})"]], workers=2)
    assert outcomes[-1].passed, outcomes[-1].detail  # the same call shape, allowed
    for name, outcome in zip(calls, outcomes):
        assert not outcome.passed and "PermissionError: [Errno 13]" in outcome.detail, name
        assert "seccomp" in outcome.layers, name


def test_the_interpreter_writes_no_bytecode_and_randomises_hashes():
    """-I ignores PYTHON* variables, so -B keeps bytecode out of what a program imports, and
    hash randomisation stays on (a seed per process)."""
    probe = ("import os, sys\nassert sys.flags.isolated and sys.flags.dont_write_bytecode\n"
             "assert sys.flags.hash_randomization == 1\n"
             "open('probe_mod.py', 'w').write('X = 1\\n')\nsys.path.insert(0, os.getcwd())\n"
             "import probe_mod\nassert probe_mod.X == 1\n"
             "assert not os.path.exists('__pycache__'), os.listdir('.')\n")
    outcomes = run_programs([probe, Program(probe + "def f():\n    return 1\n",
                                            "def check(c):\n    assert c() == 1\n", "f")])
    assert all(o.passed for o in outcomes), [o.detail for o in outcomes]
