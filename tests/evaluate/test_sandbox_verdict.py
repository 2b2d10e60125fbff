"""A code verdict means the tests ran: the candidate's process cannot produce or reach the pass
signal, values cross only as plain data, and protocol failures cannot be swallowed by a test."""

import contextlib
import math
import os
import threading
from collections import OrderedDict, namedtuple

import pytest

from sftmix_ray.evaluate import sandbox_wire as wire
from sftmix_ray.evaluate.sandbox import Limits, Program, run_programs, uid_layer

SQUARE_TESTS = "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(3) == 9\n"
SQUARE = "def sq(x):\n    return x * x\n"
Point = namedtuple("Point", "x y")


class Text(str):
    pass


@pytest.mark.parametrize("value", [
    None, True, False, 0, -1, 2 ** 200, -(2 ** 200) + 7, 1.5, -0.0, math.inf, -math.inf, "",
    "héllo \ud800 \x00", b"", b"\x00\xff", [], (), {}, set(), frozenset(), [1, [2, (3, None)]],
    {"a": [1], (1, 2): None, 3: frozenset({4})}, {1, "x", (2,)},
], ids=repr)
def test_plain_values_cross_unchanged(value):
    back = wire.decode(wire.encode(value))
    assert back == value and type(back) is type(value)


def test_nan_and_subclasses_cross_as_plain_values():
    assert math.isnan(wire.decode(wire.encode(float("nan"))))
    for value, plain in ((OrderedDict(a=1), {"a": 1}), (Text("s"), "s"), (Point(1, 2), (1, 2))):
        back = wire.decode(wire.encode(value))
        assert back == plain and type(back) is type(plain)


class AlwaysEqual:
    def __eq__(self, other):
        return True


def _self_containing():
    x = []
    x.append(x)
    return x


def _deep(n):
    value = 1
    for _ in range(n):
        value = [value]
    return value


@pytest.mark.parametrize("value", [
    AlwaysEqual(), object(), len, lambda: 1, (i for i in ()), bytearray(b"x"), range(3),
    [AlwaysEqual()], {"k": AlwaysEqual()}, _self_containing(), _deep(wire.MAX_DEPTH + 5),
], ids=lambda v: type(v).__name__)
def test_what_is_not_plain_data_has_no_encoding(value):
    with pytest.raises(wire.Unsupported):
        wire.encode(value)


@pytest.mark.parametrize("data", [
    b"", b"X", b"NN", b"i\x00\x00\x00\x05\x01", b"l\x00\x00\x00\x02N", b"l\xff\xff\xff\xffN",
    b"e\x00\x00\x00\x01l\x00\x00\x00\x00",  # a list inside a set: unhashable
    b"d\x00\x00\x00\x01l\x00\x00\x00\x00N",  # a list as a dict key
    b"s\x00\x00\x00\x02\xff\xfe",  # not UTF-8
    b"f\x00\x00", b"l\x00\x00\x00\x01" * (wire.MAX_DEPTH + 5) + b"N",
], ids=repr)
def test_malformed_data_is_refused_not_guessed(data):
    with pytest.raises(wire.Malformed):
        wire.decode(data)


@contextlib.contextmanager
def wired(server):
    """A proxy (and its `broken` list) whose calls reach `server(request_fd, reply_fd)` in a
    thread; on exit the proxy's ends close, so a serving loop sees the end and returns."""
    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
    thread = threading.Thread(target=server, args=(req_r, rep_w), daemon=True)
    thread.start()
    broken = []
    try:
        yield wire.proxy("f", req_w, rep_r, 1 << 16, broken), broken
    finally:
        os.close(req_w)
        os.close(rep_r)
        thread.join(timeout=5)
        for fd in (req_r, rep_w):
            try:
                os.close(fd)
            except OSError:  # a raw server closed its end itself
                pass


def test_proxy_returns_values_and_raises_builtin_exceptions():
    def f(x, scale=1):
        if x < 0:
            raise ValueError("negative")
        return [x * scale, {"half": x / 2}]

    with wired(lambda r, w: wire.serve({"f": f}, "f", r, w)) as (candidate, broken):
        assert candidate(4, scale=3) == [12, {"half": 2.0}]
        with pytest.raises(ValueError, match="negative"):
            candidate(-1)
        assert not broken


@pytest.mark.parametrize("reply", [
    b"\xff\xff\xff\xff",  # a frame far over the cap, refused before it is read
    b"\x00\x00\x00\x01Z",  # an unknown tag
    b"\x00\x00\x00\x01N",  # a value that is not a reply
    b"\x00\x00\x00\x05",  # cut off, then the candidate's end closes
], ids=repr)
def test_a_bad_reply_breaks_the_call_and_every_later_one(reply):
    def server(r, w):
        os.read(r, 1 << 16)
        os.write(w, reply)
        os.close(w)

    with wired(server) as (candidate, broken):
        with pytest.raises(wire.CandidateBroke):
            candidate(1)
        with pytest.raises(wire.CandidateBroke):  # latched: no later call can pass
            candidate(1)
        assert broken


def test_candidate_exiting_is_not_an_exception_a_test_can_catch():
    def leave():
        raise SystemExit(0)

    with wired(lambda r, w: wire.serve({"f": leave}, "f", r, w)) as (candidate, broken):
        with pytest.raises(wire.CandidateBroke):
            try:
                candidate()
            except Exception:  # what a lenient test might do
                pass
        assert broken


_CMDLINE_FD = ("import os\nargs = open('/proc/self/cmdline', 'rb').read().split(b'\\0')\n"
               "fds = dict(a.decode().split('=', 1) for a in args if b'=' in a)\n")
FORGERIES = {
    "writes 'passed' to every fd, exits 0":
        "import os\nfor fd in range(64):\n    try:\n        os.write(fd, b'\\npassed\\n')\n"
        "    except OSError:\n        pass\nos._exit(0)\n",
    "writes 'passed' into every /proc/*/fd it can open":
        "import os\nfor pid in filter(str.isdigit, os.listdir('/proc')):\n    try:\n"
        "        fds = os.listdir(f'/proc/{pid}/fd')\n    except OSError:\n        continue\n"
        "    for fd in fds:\n        try:\n"
        "            with open(f'/proc/{pid}/fd/{fd}', 'w') as f:\n"
        "                f.write('passed\\n')\n        except OSError:\n            pass\n"
        "os._exit(0)\n",
    "kills every process it can":
        "import os, signal\nfor pid in filter(str.isdigit, os.listdir('/proc')):\n    try:\n"
        "        os.kill(int(pid), signal.SIGKILL)\n    except OSError:\n        pass\n",
    "prints the old pass signal and leaves": "print('passed')\nimport sys\nsys.exit(0)\n",
    "returns an object equal to everything":
        "class E:\n    def __eq__(self, other):\n        return True\ndef sq(x):\n    return E()\n",
    "returns an int subclass equal to everything":
        "class I(int):\n    def __eq__(self, other):\n        return True\n"
        "    __hash__ = int.__hash__\ndef sq(x):\n    return I(0)\n",
    "exits inside the call": "import os\ndef sq(x):\n    os._exit(0)\n",
    "raises SystemExit inside the call": "import sys\ndef sq(x):\n    sys.exit(0)\n",
    "patches builtins, answers wrong":
        "import builtins\nbuiltins.AssertionError = type('A', (Exception,), {})\n"
        "builtins.isinstance = lambda *a: True\ndef sq(x):\n    return 0\n",
    "sends an oversized reply frame": _CMDLINE_FD +
        "os.write(int(fds['reply']), b'\\xff\\xff\\xff\\xff')\ndef sq(x):\n    return x * x\n",
    "sends a malformed reply frame": _CMDLINE_FD +
        "os.write(int(fds['reply']), b'\\x00\\x00\\x00\\x02ZZ')\ndef sq(x):\n    return x * x\n",
    "returns a generator": "def sq(x):\n    yield x * x\n",
}


# Some forgeries kill every process they can: only a uid of its own keeps pytest out of reach.
@pytest.mark.skipif(not uid_layer(), reason="these forgeries need the uid layer (root only)")
def test_a_candidate_cannot_forge_a_pass():
    lenient = ("def check(candidate):\n    try:\n        assert candidate(2) == 4\n"
               "    except Exception:\n        pass\n")
    bare = lenient.replace("except Exception:", "except:")  # catches even a broken call
    cases = {"honest": Program(SQUARE, SQUARE_TESTS, "sq"),
             **{name: Program(code, SQUARE_TESTS, "sq") for name, code in FORGERIES.items()},
             "exits inside the call, lenient test":
                 Program(FORGERIES["exits inside the call"], lenient, "sq"),
             "raises SystemExit inside the call, lenient test":
                 Program(FORGERIES["raises SystemExit inside the call"], lenient, "sq"),
             "exits inside the call, bare-except test":
                 Program(FORGERIES["exits inside the call"], bare, "sq"),
             "returns a generator, bare-except test":
                 Program(FORGERIES["returns a generator"], bare, "sq")}
    outcomes = dict(zip(cases, run_programs(list(cases.values()), Limits(timeout_s=5),
                                            workers=2)))
    honest = outcomes.pop("honest")
    assert honest.passed, honest.detail  # the same tests pass an honest candidate
    for name, outcome in outcomes.items():
        assert not outcome.passed and outcome.status == "failed", (name, outcome)
    assert "cannot cross as plain data" in outcomes["returns an object equal to everything"].detail
    assert "over the" in outcomes["sends an oversized reply frame"].detail


def test_honest_candidates_keep_their_behaviour():
    """Exceptions a test expects, keyword arguments, state, containers and floats all cross."""
    tests = ("def check(candidate):\n    try:\n        candidate(-1)\n        assert False\n"
             "    except ValueError as e:\n        assert 'negative' in str(e)\n"
             "    assert candidate(4, scale=0.5) == (2.0, [4], {'n': {4}})\n"
             "    assert candidate(True) is None\n")
    solution = ("def f(x, scale=1):\n    if x is True:\n        return None\n    if x < 0:\n"
                "        raise ValueError('negative')\n    return x * scale, [x], {'n': {x}}\n")
    helper = ("def double(x):\n    return 2 * x\n\ndef f(x):\n    pass\n\n"
              "def check(candidate):\n    assert candidate(double(3)) == 7\n")
    outcomes = run_programs([Program(solution, tests, "f"),
                             Program("def f(x):\n    return x + 1\n", helper, "f")])
    assert all(o.passed for o in outcomes), [o.detail for o in outcomes]


@pytest.mark.parametrize("kind", [StopIteration, StopAsyncIteration])
def test_a_raised_stop_iteration_becomes_a_runtime_error(kind):
    def stop(x):
        raise kind("early")

    with wired(lambda r, w: wire.serve({"f": stop}, "f", r, w)) as (candidate, broken):
        for _ in range(2):
            with pytest.raises(RuntimeError, match=f"{kind.__name__}: early"):
                candidate(1)
        assert not broken  # an exception like any other, not a broken call


# Tests that pass vacuously if a call's StopIteration ends their loop, and the same tests on an
# honest candidate; the candidate's reply would cross as a StopIteration raised in the tests.
_EARLY_ENDS = {
    "all(map(...))": "def check(candidate):\n    assert all(map(candidate, [2, 3, -1]))\n",
    "for over map(...)": "def check(candidate):\n    for ok in map(candidate, [2, 3, -1]):\n"
                         "        assert ok\n",
    "async for": "def check(candidate):\n    class Calls:\n        n = 0\n"
                 "        def __aiter__(self):\n            return self\n"
                 "        async def __anext__(self):\n            self.n += 1\n"
                 "            if self.n > 3:\n                raise StopAsyncIteration\n"
                 "            assert candidate(self.n)\n            return self.n\n"
                 "    async def run():\n        async for _ in Calls():\n            pass\n"
                 "    try:\n        run().send(None)\n    except StopIteration:\n        pass\n",
}


def test_a_candidate_cannot_end_a_tests_loop_early():
    stops = {"StopIteration": "def ok(x):\n    raise StopIteration\n",
             "StopAsyncIteration": "def ok(x):\n    raise StopAsyncIteration\n"}
    honest = "def ok(x):\n    return x > 0 or x == -1\n"
    cases = [(f"{loop}, {name}", Program(code, tests, "ok"))
             for loop, tests in _EARLY_ENDS.items() for name, code in stops.items()]
    cases += [(f"{loop}, honest", Program(honest, tests, "ok"))
              for loop, tests in _EARLY_ENDS.items()]
    outcomes = run_programs([program for _, program in cases], Limits(timeout_s=5), workers=2)
    for (name, _), outcome in zip(cases, outcomes):
        if name.endswith("honest"):
            assert outcome.passed, (name, outcome.detail)
        else:
            assert not outcome.passed and "RuntimeError" in outcome.detail, (name, outcome)
