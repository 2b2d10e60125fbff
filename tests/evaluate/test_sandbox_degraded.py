"""Root without some privilege (an ordinary or a rootless container, a seccomp or AppArmor
policy) still judges: honest programs pass and import the standard library, hostile ones fail,
`Outcome.layers` names what took effect, and a sandbox that cannot be built as its layers say is
one clear SandboxError, never a silent score of 0.

Each case runs a fresh evaluator in a subprocess under a wrapper that only takes privileges away
(setpriv, capsh, a seccomp filter on mount), or inside user and mount namespaces of its own
(unshare --propagation private): nothing here mounts or unshares in the test's own process."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sftmix_ray.evaluate import sandbox

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not sandbox.uid_layer(),
                                reason="these take privileges away from a root that has them")
EVALUATE = """
import json, sys
from sftmix_ray.evaluate.sandbox import Limits, Program, SandboxError, run_programs
specs = json.loads(sys.argv[1])
try:
    outcomes = run_programs([Program(**s) if isinstance(s, dict) else s for s in specs],
                            Limits(timeout_s=5), workers=4)
except SandboxError as exc:
    print(json.dumps({"error": str(exc)}))
else:
    print(json.dumps({"outcomes": [{"passed": o.passed, "detail": o.detail,
                                    "layers": sorted(o.layers)} for o in outcomes]}))
"""
# Installs a seccomp filter refusing mount(2) (EPERM) when its flags (args[3], low word) equal
# argv[1], or, with argv[2] == "any", share a bit with it; then runs the evaluator under it.
UNDER_FILTER = """
import errno, os, sys
from sftmix_ray.evaluate.sandbox_child import install_filter
arch, nr_mount = {"x86_64": (0xC000003E, 165), "aarch64": (0xC00000B7, 40)}[os.uname().machine]
test = 0x45 if sys.argv[2] == "any" else 0x15  # BPF_JSET or BPF_JEQ
assert install_filter([(0x20, 4, None, None), (0x15, arch, 2, "allow"), (0x20, 0, None, None),
                       (0x15, nr_mount, 4, "allow"), (0x20, 40, None, None),
                       (test, int(sys.argv[1]), "deny", "allow")], errno.EPERM)
os.execv(sys.executable, [sys.executable, "-c", sys.argv[3], *sys.argv[4:]])
"""
MS_REMOUNT, FIRST_MOUNT = 32, (1 << 14) | (1 << 18)  # MS_REC | MS_PRIVATE: sandbox_child's first
NO_SYS_ADMIN = ["setpriv", "--bounding-set=-sys_admin", "--inh-caps=-all"]
# capsh runs a shell after `--`: this one runs the command that follows as it stands
NO_SEARCH = ["capsh", "--drop=cap_sys_admin,cap_dac_read_search", "--", "-c", 'exec "$0" "$@"']
NO_SETPCAP = ["setpriv", "--bounding-set=-setpcap", "--inh-caps=-all"]
ROOTLESS = ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"]

STDLIB = ("import json, re, math, collections, hashlib, itertools, fractions, decimal, heapq\n"
          "import string, statistics, datetime, ctypes.util, tempfile, os\n"
          "assert hashlib.sha256(b'x').hexdigest()[:4] == '2d71'\n"
          "assert decimal.Decimal('0.1') * 3 == decimal.Decimal('0.3')\n"
          "assert fractions.Fraction(1, 3) * 3 == 1 and statistics.mean([1, 3]) == 2\n"
          "assert 'é'.encode('cp1252') == b'\\xe9'  # a codec loaded only now\n"
          "fd, path = tempfile.mkstemp()  # in TMPDIR, its own directory\n"
          "os.write(fd, b'x')\nopen('here.txt', 'w').write('x')\n")
NO_CAPS = ("caps = {k: v.strip() for k, v in (l.split(':') for l in open('/proc/self/status'))"
           " if k in ('CapInh', 'CapPrm', 'CapEff', 'CapAmb')}\n"
           "assert set(caps.values()) == {'0000000000000000'}, caps\n")
TWO_SIDES = {"solution": "import math\ndef f(x):\n    return math.isqrt(x)\n",
             "tests": "import json\ndef check(c):\n    assert c(json.loads('16')) == 4\n",
             "entry_point": "f"}
EQUAL = {"solution": "class E:\n    def __eq__(self, o):\n        return True\n"
                     "def f(x):\n    return E()\n",
         "tests": TWO_SIDES["tests"], "entry_point": "f"}
ADD_KEY = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
           "nr = {'x86_64': 248, 'aarch64': 217}[os.uname().machine]\n"
           "assert libc.syscall(nr, b'user', b'sftmix', b'v', 1, -4) >= 0, ctypes.get_errno()\n")
# Only where the program has a uid of its own: as the evaluator's uid these could reach pytest.
FORGE = {"solution": "import os\nfor pid in filter(str.isdigit, os.listdir('/proc')):\n"
                     "    try:\n        fds = os.listdir(f'/proc/{pid}/fd')\n"
                     "    except OSError:\n        continue\n    for fd in fds:\n        try:\n"
                     "            with open(f'/proc/{pid}/fd/{fd}', 'w') as f:\n"
                     "                f.write('passed\\n')\n        except OSError:\n"
                     "            pass\ndef f(x):\n    return 0\n",
         "tests": TWO_SIDES["tests"], "entry_point": "f"}
KILL_PARENT = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"


@pytest.fixture
def closed_dir(visible_dir):
    """A root-owned directory the programs can see (outside /tmp, /var/tmp, /dev/shm, /root),
    holding a root-only directory with a root-only file."""
    (visible_dir / "closed").mkdir(mode=0o700)
    (visible_dir / "closed" / "secret.txt").write_text("root only")
    os.chmod(visible_dir / "closed" / "secret.txt", 0o600)
    return visible_dir


def _evaluate(wrapper: list[str], programs: list, *, filtered: tuple = ()) -> dict:
    if not shutil.which(wrapper[0]):
        pytest.skip(f"{wrapper[0]} is not installed")
    command = [sys.executable, "-c", EVALUATE, json.dumps(programs)]
    if filtered:
        if os.uname().machine not in ("x86_64", "aarch64"):
            pytest.skip("mount's syscall number for this machine")
        command = [sys.executable, "-c", UNDER_FILTER, *map(str, filtered), *command[2:]]
    done = subprocess.run([*wrapper, *command], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    if wrapper == ROOTLESS and done.returncode and "unshare" in done.stderr:
        pytest.skip(f"no user namespace here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _judged(result: dict, names: list[str], layers: set, absent: set) -> dict:
    assert "outcomes" in result, result
    outcomes = dict(zip(names, result["outcomes"]))
    for name, outcome in outcomes.items():
        assert layers <= set(outcome["layers"]) and not absent & set(outcome["layers"]), name
        honest = name.startswith("honest")
        assert outcome["passed"] == honest, (name, outcome["detail"])
    return outcomes


@pytest.mark.parametrize("wrapper,absent", [
    (NO_SYS_ADMIN, {"mounts", "net", "ipc"}),  # no mount namespace: an ordinary container
    (NO_SEARCH, {"mounts", "net", "ipc"}),  # nor CAP_DAC_READ_SEARCH to keep
    (NO_SETPCAP, {"nocaps"}),  # the bounding set cannot be emptied
], ids=["no CAP_SYS_ADMIN", "no CAP_SYS_ADMIN nor CAP_DAC_READ_SEARCH", "no CAP_SETPCAP"])
def test_root_missing_a_capability_still_judges(wrapper, absent, closed_dir):
    programs = {"honest, the standard library": STDLIB, "honest, no capability held": NO_CAPS,
                "honest, two processes": TWO_SIDES,
                "reads a root-only file": f"open({str(closed_dir / 'closed' / 'secret.txt')!r})",
                "writes into a root-owned directory": f"open({str(closed_dir / 'x')!r}, 'w')",
                "kills its parent": KILL_PARENT, "adds a key": ADD_KEY,
                "forges a pass through /proc": FORGE, "equals everything": EQUAL}
    result = _evaluate(wrapper, list(programs.values()))
    present = {"uid", "seccomp"} | ({"nocaps"} - absent) | ({"mounts", "net"} - absent)
    outcomes = _judged(result, list(programs), present, absent)
    assert not (closed_dir / "x").exists()
    assert "Operation not permitted" in outcomes["kills its parent"]["detail"]
    denied = "Read-only file system" if "mounts" in present else "Permission denied"
    assert denied in outcomes["writes into a root-owned directory"]["detail"]


def test_mount_refused_from_the_start_falls_back_to_no_mounts(closed_dir):
    """unshare is allowed, mount is not (seccomp here; AppArmor does the same): the first mount
    call fails, and programs run on the no-mount path."""
    programs = {"honest, the standard library": STDLIB, "honest, two processes": TWO_SIDES,
                "reads a root-only file": f"open({str(closed_dir / 'closed' / 'secret.txt')!r})",
                "kills its parent": KILL_PARENT, "equals everything": EQUAL}
    result = _evaluate(["env"], list(programs.values()), filtered=(FIRST_MOUNT, "equal"))
    _judged(result, list(programs), {"uid", "nocaps", "net", "ipc", "seccomp"}, {"mounts"})


def test_a_mount_refused_midway_is_one_clear_error():
    """The first mount passes, the read-only remounts after it are refused: no program can be
    judged as the layers say, so the evaluation stops with the cause instead of scoring 0."""
    result = _evaluate(["env"], [STDLIB, TWO_SIDES, "x = 1\n"] * 3,
                       filtered=(MS_REMOUNT, "any"))
    assert set(result) == {"error"}, result
    assert "could not confine a program" in result["error"]
    assert "mount" in result["error"] and "Operation not permitted" in result["error"]


def test_a_rootless_container_runs_without_the_uid_layer(closed_dir):
    """Root of a user namespace that maps no other uid: chown to a fresh uid fails (EINVAL), so
    programs run as that root with no capability, inside a user namespace of their own. No
    program here signals or writes into other processes: as this uid it could reach pytest."""
    programs = {"honest, the standard library": STDLIB, "honest, no capability held": NO_CAPS,
                "honest, two processes": TWO_SIDES, "adds a key": ADD_KEY,
                "writes outside its scratch space": f"open({str(closed_dir / 'x')!r}, 'w')",
                "equals everything": EQUAL}
    result = _evaluate(ROOTLESS, list(programs.values()))
    outcomes = _judged(result, list(programs), {"userns", "nocaps", "mounts", "seccomp"},
                       {"uid"})
    assert "Read-only file system" in outcomes["writes outside its scratch space"]["detail"]
    assert not (closed_dir / "x").exists()
