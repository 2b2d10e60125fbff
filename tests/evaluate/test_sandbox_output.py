"""A program that writes without end costs the evaluator a fixed amount of memory: its output
is read as a stream and only a capped tail (`Limits.output_bytes`) is kept. It is killed and fails
only past `Limits.output_kill_bytes`, far larger, so an honest program that prints a lot (a
debug print left in a function the tests call many times) still passes."""

import json
import subprocess
import sys
from pathlib import Path

from sftmix_ray.evaluate.sandbox import Limits, Program, run_program, run_programs

ROOT = Path(__file__).resolve().parents[2]
# A fresh evaluator per program, so its peak RSS is that program's alone.
EVALUATE = """
import json, resource, sys
from sftmix_ray.evaluate.sandbox import Limits, Program, run_program
spec = json.loads(sys.argv[1])
program = Program(**spec) if isinstance(spec, dict) else spec
outcome = run_program(program, Limits(timeout_s=20))
print(json.dumps({"rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "status": outcome.status, "detail": outcome.detail}))
"""
FLOODS = {
    "stdout": "while True:\n    print('x' * 1000)\n",
    "stderr": "import sys\nwhile True:\n    sys.stderr.write('y' * 1000 + '\\n')\n",
    "raw fd, no newlines": "import os\nwhile True:\n    os.write(1, b'z' * 65536)\n",
    "the candidate, inside a call": {
        "solution": "def f(x):\n    while True:\n        print('w' * 1000)\n",
        "tests": "def check(candidate):\n    assert candidate(1) == 1\n", "entry_point": "f"},
}


def _evaluate(spec) -> dict:
    done = subprocess.run([sys.executable, "-c", EVALUATE, json.dumps(spec)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def test_a_flood_costs_the_evaluator_fixed_memory_and_fails_with_the_reason():
    baseline = _evaluate("x = 1\n")
    assert baseline["status"] == "passed"
    for name, spec in FLOODS.items():
        flood = _evaluate(spec)
        assert flood["status"] == "failed", name  # killed at the limit, long before the timeout
        assert flood["detail"] == (f"output over {Limits().output_kill_bytes} bytes "
                                   "(Limits.output_kill_bytes)"), name
        grown_mb = (flood["rss_kb"] - baseline["rss_kb"]) / 1024
        # far below the 8 MiB each flood wrote before it was killed: only the tail was kept
        assert grown_mb < 4, f"{name}: the evaluator grew {grown_mb:.1f} MB"


def test_output_under_the_cap_is_fine_and_a_failure_keeps_its_tail():
    chatty = "for i in range(5000):\n    print(f'line {i}')\n"  # ~49 KB, under 64 KB
    assert run_program(chatty).passed
    outcome = run_program(chatty + "raise RuntimeError('the end')\n")
    assert not outcome.passed and outcome.detail.endswith("RuntimeError: the end")
    assert "line 4999" in outcome.detail and "line 0\n" not in outcome.detail
    small = run_program("print('x' * 1000)\n", Limits(output_kill_bytes=500))
    assert small.status == "failed"
    assert small.detail == "output over 500 bytes (Limits.output_kill_bytes)"
    tests = Program("def f():\n    print('v' * 5000)\n    return 1\n",
                    "def check(candidate):\n    assert candidate() == 1\n", "f")
    assert not run_program(tests, Limits(output_kill_bytes=4000)).passed
    assert run_program(tests).passed


# A debug print left in the solution: ~2 KB per call, the tests call it 100 times (~200 KB).
DEBUG_PRINT = "def f(x):\n    print('debug', x, list(range(400)))\n    return x + 1\n"
CALLED_100_TIMES = ("def check(candidate):\n    for i in range(100):\n"
                    "        assert candidate(i) == i + 1\n")


def test_an_honest_program_that_prints_past_the_kept_tail_still_passes():
    plain = DEBUG_PRINT + "for i in range(100):\n    assert f(i) == i + 1\n"
    stderr = ("import sys\nfor i in range(3000):\n    sys.stderr.write(f'warning {i}' + "
              "'.' * 80 + '\\n')\n")  # ~270 KB on stderr
    outcomes = run_programs([plain, stderr, Program(DEBUG_PRINT, CALLED_100_TIMES, "f")])
    assert all(o.passed for o in outcomes), [o.detail for o in outcomes]
    # and what is kept of a failing one is still only the tail, at most Limits.output_bytes
    failing = run_program(plain + "raise ValueError('after all that')\n")
    assert failing.status == "failed" and failing.detail.endswith("ValueError: after all that")
    wrong = run_program(Program(DEBUG_PRINT.replace("x + 1", "x"), CALLED_100_TIMES, "f"))
    assert wrong.status == "failed" and "AssertionError" in wrong.detail
