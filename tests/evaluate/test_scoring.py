import logging
import math

import pytest

from sftmix_ray.evaluate import code
from sftmix_ray.evaluate.code import build_program, pass_at_k, score_code
from sftmix_ray.evaluate.general import token_f1
from sftmix_ray.evaluate.math import extract_flexible, extract_strict, same_number, score_math
from sftmix_ray.evaluate.sandbox import Limits, Outcome, run_program


@pytest.mark.parametrize("text,strict,flexible", [
    ("So 3+4=7.\n#### 7", "7", "7"),
    ("#### 1,234", "1,234", "1,234"),
    ("He pays $18.", None, "$18."),
    ("The answer is 42.", None, "42"),  # the sentence's period is not part of the number
    ("no number here", None, None),
    ("#### -5", "-5", "-5"),
])
def test_extraction_conventions(text, strict, flexible):
    assert extract_strict(text) == strict
    assert extract_flexible(text) == flexible


def test_numeric_comparison_tolerates_formatting():
    assert same_number("1,234", "1234") and same_number("$18.", "18") and same_number("7.0", "7")
    assert not same_number("8", "7") and not same_number(None, "7")


def test_score_math_reports_both_conventions():
    probs = [{"question": "q", "answer": "x\n#### 7"}, {"question": "q", "answer": "x\n#### 3"}]
    scores, records = score_math(["so #### 7", "it is 3"], probs)
    assert scores == {"math": 0.5, "math_flexible": 1.0}
    assert records[1]["extracted_flexible"] == "3"


@pytest.mark.parametrize("n,c,k,expected", [
    (1, 1, 1, 1.0), (1, 0, 1, 0.0), (10, 5, 1, 0.5), (10, 0, 5, 0.0), (5, 5, 5, 1.0),
    (10, 3, 2, 1 - (7 * 6) / (10 * 9)),
])
def test_pass_at_k_unbiased_estimator(n, c, k, expected):
    assert math.isclose(pass_at_k(n, c, k), expected, rel_tol=1e-9)


PROBLEM = {"task_id": "t/0", "prompt": 'def add_2(x):\n    """Add 2."""\n',
           "canonical_solution": "    return x + 2\n",
           "test": "def check(candidate):\n    assert candidate(1) == 3\n", "entry_point": "add_2"}


def test_code_scores_full_functions_and_bare_bodies():
    outs = [["def add_2(x):\n    return x + 2"], ["    return x + 2\n"],
            ["def add_2(x):\n    return x"]]
    scores, records = score_code(outs, [PROBLEM] * 3)
    assert [r["verdict"] for r in records] == ["passed", "passed", "failed"]
    assert math.isclose(scores["code"], 2 / 3)


def test_model_code_and_tests_are_kept_apart():
    """The tests' side gets the prompt (its helpers) and the tests, never the model's code; the
    candidate's side never gets the tests."""
    prog = build_program(PROBLEM, "def add_2(x):\n    return x + 2  # MODEL")
    assert "MODEL" in prog.solution and "def check" not in prog.solution
    assert "MODEL" not in prog.tests and "def check" in prog.tests and '"""Add 2."""' in prog.tests
    assert prog.entry_point == "add_2"


def test_tests_may_call_the_prompts_helpers():
    """HumanEval/38's check calls encode_cyclic, a helper from the prompt, on its own side."""
    problem = {"task_id": "t/1", "entry_point": "decode",
               "prompt": "def encode(s):\n    return s[::-1]\n\n\ndef decode(s):\n",
               "test": "def check(candidate):\n    assert candidate(encode('abc')) == 'abc'\n"}
    scores, records = score_code([["    return encode(s)\n", "    return s\n"]], [problem],
                                 ks=[1])
    assert [r["verdict"] for r in records] == ["passed", "failed"]


def test_sandbox_exit_midway_is_a_failure_and_timeouts_are_killed():
    prog = build_program(PROBLEM, "import sys\nsys.exit(0)\n")
    assert run_program(prog).status == "failed"
    prog = build_program(PROBLEM, "import os\nos._exit(0)\n")
    assert run_program(prog).status == "failed"
    out = run_program("while True:\n    pass\n", Limits(timeout_s=1))
    assert out.status == "timeout" and not out.passed


def test_sandbox_program_sees_a_scrubbed_environment(monkeypatch):
    monkeypatch.setenv("SFTMIX_SECRET", "hunter2")
    prog = "import os\nassert 'SFTMIX_SECRET' not in os.environ\n"
    assert run_program(prog).passed


def test_token_f1():
    assert token_f1("The opposite of hot is cold.", "The opposite of hot is cold.") == 1.0
    assert token_f1("", "x") == 0.0
    assert 0 < token_f1("hot cold", "The opposite of hot is cold.") < 1


def test_code_records_carry_the_layers_that_held():
    _, records = score_code([["    return x + 2\n", "    return x\n"]], [PROBLEM])
    for record in records:
        assert "seccomp" in record["layers"] and record["layers"] == sorted(record["layers"])


@pytest.mark.parametrize("layers,warned", [
    ({"uid", "nocaps", "mounts", "net", "ipc", "seccomp"}, False),  # root
    ({"userns", "net", "ipc", "seccomp"}, False),  # not root, in a user namespace
    ({"net", "seccomp"}, True),  # neither: a candidate can reach the evaluator's pipes
    ({"seccomp"}, True),
])
def test_unguaranteed_verdicts_warn_once_per_process(monkeypatch, caplog, layers, warned):
    monkeypatch.setattr(code, "_warned", [])
    outcome = Outcome(True, "passed", "", "net" in layers, frozenset(layers))
    monkeypatch.setattr(code, "run_programs", lambda programs, *_: [outcome] * len(programs))
    with caplog.at_level(logging.WARNING, logger=code.__name__):
        for _ in range(3):  # a sweep scores many times
            scores, records = score_code([["    return x + 2\n"]] * 2, [PROBLEM] * 2)
            assert scores["code"] == 1.0 and records[0]["layers"] == sorted(layers)
    warnings = [r for r in caplog.records if "not guaranteed" in r.getMessage()]
    assert len(warnings) == (1 if warned else 0)
