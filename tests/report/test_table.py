"""Rows carry each objective's interval when the runs logged one, the interval of the mean for
repeated seeds, and nothing at all for runs that logged none."""

import pytest

from sftmix_ray.report.stats import mean_interval
from sftmix_ray.report.table import build_rows
from sftmix_ray.tracking.runs import Run

OBJECTIVES = {"math": "max", "code": "max"}


def _run(rid, seed, math, code=0.2, ci=True, point="a"):
    metrics = {"math": math, "code": code, "samples_math": 100.0}
    if ci:
        metrics |= {"math_ci_low": math - 0.1, "math_ci_high": math + 0.1, "math_n": 64.0}
    return Run(rid, rid, "FINISHED", {"seed": str(seed), "counts.math": point}, metrics)


def test_a_single_run_carries_its_interval_and_only_where_logged():
    [row] = build_rows([_run("r1", 0, 0.5)], OBJECTIVES)
    assert row.intervals == {"math": pytest.approx((0.4, 0.6, 64))}
    assert isinstance(row.intervals["math"][2], int) and "code" not in row.intervals


def test_repeats_carry_the_interval_of_their_mean():
    [row] = build_rows([_run("r1", 0, 0.5), _run("r2", 1, 0.6)], OBJECTIVES)
    assert row.n == 2 and row.scores["math"] == pytest.approx(0.55)
    expected = mean_interval([0.5, 0.6], [(0.4, 0.6, 64), (0.5, 0.7, 64)], (0.0, 1.0))
    assert row.intervals["math"] == pytest.approx(expected)
    assert row.intervals["math"][0] < 0.45 and row.intervals["math"][1] > 0.65
    # two seeds' t interval runs past [0, 1]; the table's stays in the score's range
    assert row.intervals["math"][:2] == (0.0, 1.0)


def test_runs_without_interval_metrics_get_none_invented():
    old = build_rows([_run("r1", 0, 0.5, ci=False), _run("r2", 0, 0.4, ci=False, point="b")],
                     OBJECTIVES)
    assert [r.intervals for r in old] == [{}, {}]
    [mixed] = build_rows([_run("r1", 0, 0.5), _run("r2", 1, 0.6, ci=False)], OBJECTIVES)
    assert mixed.intervals == {}  # one repeat without an interval: the mean has none


def test_points_off_the_front_within_noise_of_it_are_marked():
    rows = build_rows([_run("top", 0, 0.50, code=0.5, point="a"),
                       _run("near", 0, 0.45, code=0.45, point="b"),   # intervals overlap top's
                       _run("far", 0, 0.10, code=0.1, point="c")], {"math": "max"})
    by_name = {r.name: r for r in rows}
    assert by_name["top"].front and not by_name["top"].within_noise
    assert by_name["near"].within_noise and not by_name["far"].within_noise
    # without intervals, only the scores decide: a lower score is simply behind
    plain = build_rows([_run("top", 0, 0.5, ci=False, point="a"),
                        _run("near", 0, 0.45, ci=False, point="b")], {"math": "max"})
    assert [r.within_noise for r in plain if not r.front] == [False]
