"""Hostile programs score as failures without harming the host or stopping the evaluation; a
normal program in the same batch still passes. The pass@k estimator against hand values."""

import os
import socket

import pytest

from sftmix_ray.evaluate import sandbox
from sftmix_ray.evaluate.code import pass_at_k
from sftmix_ray.evaluate.sandbox import Limits, live_pids_of, run_programs

AS_ROOT = os.geteuid() == 0
# Only with a uid of its own can a program not signal the evaluator: without one (not root, or a
# rootless container) it may kill whatever runs as the same uid, pytest included.
UID_LAYER = sandbox.uid_layer()
OK = "def f(x):\n    return x + 1\nassert f(1) == 2\n"


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.5)
    yield server
    server.close()


def test_hostile_programs_fail_and_the_host_is_unharmed(tmp_path, listener, uids):
    sentinel = tmp_path / "keep.txt"
    sentinel.write_text("mine")
    outside = tmp_path / "written.txt"
    port = listener.getsockname()[1]
    hostile = {
        "fork bomb": "import os\nwhile True:\n    os.fork()\n",
        "escaping fork bomb": "import os, time\nfor _ in range(8):\n    if os.fork() == 0:\n"
                              "        os.setsid()\n        time.sleep(600)\n"
                              "time.sleep(600)\n",
        "infinite loop": "while True:\n    pass\n",
        "memory hog": "blocks = []\nwhile True:\n    blocks.append(bytearray(64 << 20))\n",
        "network": f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n",
        "sys.exit mid-way": "import sys\nsys.exit(0)\nassert False\n",
        "os._exit mid-way": "import os\nos._exit(0)\nassert False\n",
    }
    if UID_LAYER:  # as the evaluator's uid, these succeed (the files are its own) or kill pytest
        hostile["write outside"] = f"open({str(outside)!r}, 'w').write('x')\n"
        hostile["delete outside"] = f"import os\nos.remove({str(sentinel)!r})\n"
        hostile["kill parent"] = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"
    outcomes = run_programs([OK, *hostile.values(), OK], Limits(timeout_s=3), workers=2)
    assert outcomes[0].passed and outcomes[-1].passed  # the evaluation went on around them
    for name, outcome in zip(hostile, outcomes[1:-1]):
        assert not outcome.passed, name
        assert outcome.status in ("failed", "timeout"), name
    by_name = dict(zip(hostile, outcomes[1:-1]))
    assert by_name["infinite loop"].status == "timeout"  # killed, not waited for
    assert "killed after 3" in by_name["infinite loop"].detail
    assert "MemoryError" in by_name["memory hog"].detail or by_name["memory hog"].status == \
        "timeout"
    # the host: our files intact, nothing written, no connection, no process left behind
    assert sentinel.read_text() == "mine" or not UID_LAYER
    assert not outside.exists() or not UID_LAYER
    with pytest.raises(socket.timeout):
        listener.accept()
    assert outcomes[0].network_isolated or not AS_ROOT
    assert not [pid for uid in uids for pid in live_pids_of(uid)]  # every process is gone


@pytest.mark.skipif(not UID_LAYER, reason="the uid layer exists only as root, with fresh uids")
def test_root_only_layers_name_their_reason(tmp_path):
    outcomes = run_programs([
        "import os\nos.kill(os.getppid(), 9)\n",
        f"open({str(tmp_path / 'x')!r}, 'w')\n",
        "open('/tmp/sftmix-sbx-leftover', 'w').write('x')\nraise SystemExit(1)\n",
    ], Limits(timeout_s=3))
    assert "Operation not permitted" in outcomes[0].detail
    # tmp_path is in the real /tmp, which the program's private /tmp hides; a path it can see
    # is read-only to it (or, without a mount namespace, closed to its uid)
    assert "No such file or directory" in outcomes[1].detail or "mounts" not in \
        outcomes[1].layers
    denied = run_programs(["open('/usr/sftmix-sbx-probe', 'w')\n"])[0]
    assert ("Read-only file system" if "mounts" in denied.layers else "Permission denied") \
        in denied.detail
    assert not os.path.exists("/usr/sftmix-sbx-probe")
    assert not os.path.exists("/tmp/sftmix-sbx-leftover")  # its files in /tmp are removed


@pytest.mark.parametrize("n,c,k,expected", [
    (10, 3, 1, 0.3), (5, 0, 1, 0.0), (5, 5, 1, 1.0), (5, 5, 5, 1.0), (1, 1, 1, 1.0),
    (10, 3, 5, 1 - (21 / 252)),  # 1 - C(7,5)/C(10,5)
    (20, 1, 10, 0.5),            # 1 - C(19,10)/C(20,10)
])
def test_pass_at_k_against_hand_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_refuses_too_few_samples():
    with pytest.raises(ValueError, match="at least 5 samples"):
        pass_at_k(3, 1, 5)
