"""The statistics under the findings, on inputs with known answers."""

import math

import pytest
from scipy.stats import binomtest, spearmanr
from scipy.stats import t as student_t

from sftmix_ray.config.abilities import score_range
from sftmix_ray.report.stats import Estimate, compare, mean_interval, pinned, separated, spearman


def wilson(k, n):
    ci = binomtest(k, n).proportion_ci(method="wilson")
    return float(ci.low), float(ci.high), n


def test_spearman_is_exact_on_few_points_where_the_t_approximation_says_zero():
    assert spearmanr([1, 2, 3, 4], [1, 2, 3, 4]).pvalue == 0  # what the old findings read
    assert spearman([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx((1.0, 2 / 24))
    assert spearman([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]) == pytest.approx((-1.0, 2 / 120))


def test_spearman_beyond_the_exact_range_is_scipys():
    xs, ys = list(range(12)), [0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10]
    ref = spearmanr(xs, ys)
    assert spearman(xs, ys) == pytest.approx((ref.statistic, ref.pvalue))


def test_mean_interval_of_one_repeat_is_its_own():
    assert mean_interval([0.25], [wilson(16, 64)]) == pytest.approx(wilson(16, 64))


def test_mean_interval_of_repeats_averages_the_widths_and_adds_the_seed_spread():
    scores, bounds = [0.25, 0.35], [(0.15, 0.35, 64), (0.25, 0.45, 60)]
    low, high, n = mean_interval(scores, bounds)
    seeds = student_t.ppf(0.975, 1) * 0.0707107 / math.sqrt(2)
    assert (low, high) == pytest.approx((0.3 - math.hypot(0.1, seeds),
                                         0.3 + math.hypot(0.1, seeds)), rel=1e-5)
    assert n == 60
    # equal repeats: no seed spread, the shared problem-sampling width is kept, not shrunk
    assert mean_interval([0.3, 0.3], [(0.2, 0.4, 64)] * 2) == pytest.approx((0.2, 0.4, 64))


def test_mean_interval_is_none_when_any_repeat_has_none():
    assert mean_interval([0.2, 0.3], [(0.1, 0.3, 64), None]) is None
    assert mean_interval([], []) is None


def test_separated_needs_both_intervals():
    a, b = Estimate("a", .6, .5, .7), Estimate("b", .3, .2, .4)
    assert separated(a, b) is True and separated(b, a) is True
    assert separated(a, Estimate("c", .45, .35, .55)) is False
    assert separated(a, Estimate("d", .1)) is None


@pytest.mark.parametrize("estimates,kind,names", [
    ([Estimate("a", .6, .5, .7), Estimate("b", .3, .2, .4)], "lead", ["a", "b"]),
    ([Estimate("a", .6, .5, .7), Estimate("b", .55, .45, .65), Estimate("c", .1, .05, .2)],
     "noise", ["a", "b"]),
    ([Estimate("a", .5, .4, .6), Estimate("b", .5, .4, .6), Estimate("c", .5)], "tie",
     ["a", "b", "c"]),
    ([Estimate("a", .6), Estimate("b", .3)], "untested", ["a", "b"]),
    ([Estimate("a", .6)], "single", ["a"]),
])
def test_compare(estimates, kind, names):
    got_kind, who = compare(estimates, "max")
    assert (got_kind, [e.name for e in who]) == (kind, names)


def test_compare_for_a_minimized_objective_leads_from_below():
    kind, who = compare([Estimate("a", .6, .5, .7), Estimate("b", .3, .2, .4)], "min")
    assert kind == "lead" and who[0].name == "b"


def test_pinned():
    assert pinned([Estimate("a", 0.0, *wilson(0, 64)[:2])] * 3) == "floor"
    assert pinned([Estimate("a", 0.01, 0.002, 0.04)]) == "floor"
    assert pinned([Estimate("a", 1.0, *wilson(64, 64)[:2])]) == "ceiling"
    assert pinned([Estimate("a", 0.0), Estimate("b", 0.02, 0.005, 0.083)]) is None
    assert pinned([Estimate("a", 0.0), Estimate("b", 4.0)]) is None  # not a [0, 1] score
    assert pinned([]) is None


def test_mean_interval_stays_in_the_scores_range():
    # two repeats far apart: the t interval (12.7 × the spread) runs past both ends of [0, 1]
    scores, bounds = [0.05, 0.95], [(0.0, 0.2, 64), (0.8, 1.0, 64)]
    low, high, _ = mean_interval(scores, bounds)
    assert low < 0 and high > 1
    low, high, _ = mean_interval(scores, bounds, score_range("code"))
    assert (low, high) == (0.0, 1.0)
    # a held-out loss is bounded below only; an lm-eval metric not at all
    assert mean_interval([0.1, 3.0], [(0.1, 0.1, 8), (3.0, 3.0, 8)],
                         score_range("loss_math"))[:2][0] == 0.0
    assert score_range("arc_acc") == (-math.inf, math.inf)
