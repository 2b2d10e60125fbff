"""Intervals on known cases: Wilson's published values, a bootstrap that brackets the mean and
narrows with more problems, and each ability's records."""

import math

import pytest

from sftmix_ray.evaluate.intervals import bootstrap_mean, score_intervals, wilson


def _wilson_closed_form(k: int, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    p, d = k / n, 1 + z * z / n
    center = (p + z * z / (2 * n)) / d
    half = z / d * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return center - half, center + half


@pytest.mark.parametrize("k,n,rounded", [
    (0, 64, (0.0, 0.0566)),     # an ability at the floor still has room above it
    (4, 64, (0.0246, 0.1500)),  # 4 of 64 overlaps 0 of 64's interval: no lead over it
    (32, 64, (0.3810, 0.6190)),
    (64, 64, (0.9434, 1.0)),
])
def test_wilson_matches_the_closed_form(k, n, rounded):
    lo, hi = wilson(k, n)
    assert (lo, hi) == pytest.approx(_wilson_closed_form(k, n), abs=1e-9)
    assert (round(lo, 4), round(hi, 4)) == rounded


def test_bootstrap_brackets_the_mean_and_narrows_with_more_problems():
    small = [0.0, 1.0] * 8
    large = small * 16
    lo_s, hi_s = bootstrap_mean(small)
    lo_l, hi_l = bootstrap_mean(large)
    assert lo_s < 0.5 < hi_s and lo_l < 0.5 < hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 2  # 16x the problems: about a quarter the width
    assert bootstrap_mean(small) == (lo_s, hi_s)  # seeded: the same every time
    assert bootstrap_mean([0.3, 0.3, 0.3]) == (0.3, 0.3)


def test_intervals_for_each_ability_from_its_records():
    records = {
        "math": [{"correct": i < 16} for i in range(64)],
        "code": [{"task_id": f"t{i}", "verdict": "passed" if i < 8 else "failed"}
                 for i in range(32)],
        "general": [{"f1": 0.5}, {"f1": 0.7}, {"f1": None}, {"f1": 0.6}],
    }
    out = score_intervals(records)
    assert (out["math_n"], out["code_n"], out["general_n"]) == (64, 32, 3)
    assert (out["math_ci_low"], out["math_ci_high"]) == pytest.approx(wilson(16, 64))
    assert (out["code_ci_low"], out["code_ci_high"]) == pytest.approx(wilson(8, 32))
    assert out["general_ci_low"] < 0.6 < out["general_ci_high"]


def test_judge_ratings_and_sampled_code_use_the_bootstrap():
    ratings = [{"rating": r} for r in (8, 6, -1, 7, 9)]  # -1: no grade, left out
    out = score_intervals({"general": ratings,
                           "code": [{"task_id": t, "verdict": v} for t, v in
                                    [("a", "passed"), ("a", "failed"), ("b", "failed"),
                                     ("b", "failed"), ("c", "passed"), ("c", "passed")]]},
                          code_k=1)
    assert out["general_n"] == 4 and 6 <= out["general_ci_low"] < 7.5 < out["general_ci_high"]
    assert out["code_n"] == 3 and out["code_ci_low"] <= 0.5 <= out["code_ci_high"]
