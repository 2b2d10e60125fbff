"""HumanEval-style functional correctness: completions run against their tests in the sandbox."""

from __future__ import annotations

import re

import numpy as np

from .sandbox import Limits, run_programs

_FENCE = re.compile(r"```(?:python|py)?\n(.*?)(?:```|$)", re.S)


def completion_code(output: str) -> str:
    m = _FENCE.search(output)
    return m.group(1) if m else output


def build_program(problem: dict, output: str) -> str:
    code = completion_code(output)
    if f"def {problem['entry_point']}" not in code:
        # A bare body continues the prompt, as in HumanEval's completion format.
        if code and not code[0].isspace():
            code = "\n".join("    " + line for line in code.splitlines())
        code = problem["prompt"] + code
    # The prompt runs first (with a placeholder body) so its imports hold even when the model
    # rewrote the whole function without them.
    stub = problem["prompt"] + "    pass\n\n"
    return f"{stub}{code}\n\n{problem['test']}\n\ncheck({problem['entry_point']})\n"


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimator of pass@k from n samples with c correct (Chen et al., 2021)."""
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def score_code(outputs: list[list[str]], problems: list[dict], k: int = 1,
               limits: Limits = Limits()) -> tuple[dict, list[dict]]:
    """`outputs[i]` holds the samples for problem i; the score is mean pass@k."""
    programs = [build_program(p, o) for p, outs in zip(problems, outputs) for o in outs]
    outcomes = iter(run_programs(programs, limits))
    records, total = [], 0.0
    for prob, outs in zip(problems, outputs):
        results = [next(outcomes) for _ in outs]
        c = sum(r.passed for r in results)
        total += pass_at_k(len(outs), c, k) if len(outs) >= k else float(c > 0)
        for o, r in zip(outs, results):
            records.append({"task_id": prob["task_id"], "prompt": prob["prompt"], "output": o,
                            "verdict": r.status, "detail": r.detail[-300:]})
    return {"code": total / max(len(problems), 1)}, records
