"""Uncertainty on every ability score, computed from the per-problem records: a 95% Wilson
interval for a pass rate or an accuracy (k of n problems), a bootstrap interval over problems for
an averaged score (token F1, judge ratings, pass@k from several samples). Logged beside the score
as `<ability>_ci_low`, `<ability>_ci_high` and `<ability>_n`, so a front and the findings can
tell a difference from noise: at 64 problems, 0.1 has an interval of about ±0.07."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0  # the same records always give the same interval


def wilson(k: int, n: int) -> tuple[float, float]:
    """The Wilson score interval of k successes in n trials (scipy's binomtest)."""
    from scipy.stats import binomtest

    if n == 0:
        return float("nan"), float("nan")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return float(ci.low), float(ci.high)


def bootstrap_mean(values) -> tuple[float, float]:
    """A percentile bootstrap interval of the mean, resampling problems (scipy's bootstrap)."""
    from scipy.stats import bootstrap

    data = np.asarray(list(values), dtype=float)
    if len(data) == 0:
        return float("nan"), float("nan")
    if len(data) == 1 or np.all(data == data[0]):
        return float(data[0]), float(data[0])  # no spread to resample
    ci = bootstrap((data,), np.mean, confidence_level=CONFIDENCE, method="percentile",
                   n_resamples=BOOTSTRAP_RESAMPLES, random_state=BOOTSTRAP_SEED).confidence_interval
    return float(ci.low), float(ci.high)


def _code_interval(records: list[dict], k: int) -> tuple[float, float, int]:
    from .code import pass_at_k

    by_task: dict[str, list[bool]] = defaultdict(list)
    for r in records:
        by_task[r["task_id"]].append(r["verdict"] == "passed")
    if all(len(v) == 1 for v in by_task.values()):  # greedy: a pass rate
        return (*wilson(sum(v[0] for v in by_task.values()), len(by_task)), len(by_task))
    per_task = [pass_at_k(len(v), sum(v), k) for v in by_task.values()]
    return (*bootstrap_mean(per_task), len(per_task))


def _general_interval(records: list[dict]) -> tuple[float, float, int]:
    if any("rating" in r for r in records):  # an MT-Bench judge: ratings, -1 = no grade
        values = [r["rating"] for r in records if r.get("rating", -1) >= 0]
    else:  # token F1 against references (None where a question has none)
        values = [r["f1"] for r in records if r.get("f1") is not None]
    return (*bootstrap_mean(values), len(values))


def score_intervals(records: dict, code_k: int = 1) -> dict[str, float]:
    """`<ability>_ci_low`, `<ability>_ci_high`, `<ability>_n` for each ability in `records`."""
    out = {}
    found = {}
    if "math" in records:
        hits = [bool(r["correct"]) for r in records["math"]]
        found["math"] = (*wilson(sum(hits), len(hits)), len(hits))
    if "code" in records:
        found["code"] = _code_interval(records["code"], code_k)
    if "general" in records:
        found["general"] = _general_interval(records["general"])
    for ability, rows in records.items():  # lm-eval abilities: a value per document
        if ability not in found and isinstance(rows, list) and rows and "value" in rows[0]:
            values = [float(r["value"]) for r in rows]
            found[ability] = (*wilson(int(sum(values)), len(values)), len(values)) \
                if all(v in (0.0, 1.0) for v in values) else (*bootstrap_mean(values), len(values))
    for ability, (low, high, n) in found.items():
        out.update({f"{ability}_ci_low": low, f"{ability}_ci_high": high, f"{ability}_n": n})
    return out
