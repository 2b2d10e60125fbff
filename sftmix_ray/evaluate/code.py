"""HumanEval-style functional correctness: completions run against their tests in the sandbox."""

from __future__ import annotations

import logging
import re

import numpy as np

from .sandbox import Limits, Outcome, Program, run_programs

_FENCE = re.compile(r"```(?:python|py)?\n(.*?)(?:```|$)", re.S)
_log = logging.getLogger(__name__)
_warned: list[bool] = []  # once per process: a sweep scores many times


def completion_code(output: str) -> str:
    m = _FENCE.search(output)
    return m.group(1) if m else output


def build_program(problem: dict, output: str) -> Program:
    """The model's code and the benchmark's tests, kept apart: they run in two processes, and
    only the tests' process may report a pass (see sandbox.py)."""
    code = completion_code(output)
    if f"def {problem['entry_point']}" not in code:
        # A bare body continues the prompt, as in HumanEval's completion format.
        if code and not code[0].isspace():
            code = "\n".join("    " + line for line in code.splitlines())
        code = problem["prompt"] + code
    # The prompt runs first (with a placeholder body) so its imports hold even when the model
    # rewrote the whole function without them; on the tests' side it brings the helpers a test
    # may call (HumanEval/38's check calls encode_cyclic), the benchmark's own versions.
    stub = problem["prompt"] + "    pass\n\n"
    return Program(solution=f"{stub}{code}\n", tests=f"{stub}{problem['test']}\n",
                   entry_point=problem["entry_point"])


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimator of pass@k from n samples with c correct (Chen et al., 2021)."""
    if not 0 < k <= n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, got {n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def _warn_if_unguaranteed(outcomes: list[Outcome]) -> None:
    """Without a uid of its own or a user namespace, a candidate can reach the evaluator's pipes
    (sandbox.py): its pass is not guaranteed, and whoever reads the scores should know."""
    weak = next((o for o in outcomes if o.layers and not {"uid", "userns"} & o.layers), None)
    if weak is not None and not _warned:
        _warned.append(True)
        _log.warning("code verdicts are not guaranteed here: programs run with neither a uid of "
                     "their own nor a user namespace (layers: %s), so a candidate could forge a "
                     "pass; evaluate as root, or where user namespaces are allowed",
                     ",".join(sorted(weak.layers)))


def score_code(outputs: list[list[str]], problems: list[dict], ks: list[int] = (1,),
               limits: Limits = Limits(), workers: int | None = None
               ) -> tuple[dict, list[dict]]:
    """`outputs[i]` holds the samples for problem i. `code` is the mean pass@k for the first k,
    and `code_pass_at_<k>` is reported for every k (MLflow metric names cannot hold '@')."""
    programs = [build_program(p, o) for p, outs in zip(problems, outputs) for o in outs]
    done = run_programs(programs, limits, workers)
    _warn_if_unguaranteed(done)
    outcomes = iter(done)
    records, totals = [], {k: 0.0 for k in ks}
    for prob, outs in zip(problems, outputs):
        results = [next(outcomes) for _ in outs]
        c = sum(r.passed for r in results)
        for k in ks:
            totals[k] += pass_at_k(len(outs), c, k)
        for o, r in zip(outs, results):
            records.append({"task_id": prob["task_id"], "prompt": prob["prompt"], "output": o,
                            # already capped, printable and redacted (sandbox.clean_detail)
                            "verdict": r.status, "detail": r.detail,
                            "layers": sorted(r.layers)})  # what held while it ran (sandbox.py)
    n = max(len(problems), 1)
    scores = {f"code_pass_at_{k}": totals[k] / n for k in ks}
    scores["code"] = scores[f"code_pass_at_{ks[0]}"]
    return scores, records
