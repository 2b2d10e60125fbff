"""The statistics the findings rest on, kept apart from the sentences: a score with its 95%
interval (`Estimate`), the interval of a mean of repeats, Spearman's test of a trend, whether two
scores are told apart by their intervals, and whether an ability sits at the floor or ceiling."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np
from scipy.stats import permutation_test, rankdata, spearmanr
from scipy.stats import t as student_t

ALPHA = 0.05          # a trend is claimed only when its two-sided p is below this
CONFIDENCE = 0.95     # the level of every interval logged beside a score (evaluate.intervals)
EXACT_UP_TO = 8       # up to this many points Spearman's p is exact (8! = 40320 orderings)
FLOOR = 0.05          # a [0, 1] score whose 95% upper bound is below this is at the floor
CEILING = 0.95        # ... and one whose 95% lower bound is above this, at the ceiling

METHOD = (f"How the findings decide: a trend is claimed only when Spearman's ρ has a two-sided "
          f"p < {ALPHA} (exact over every ordering up to {EXACT_UP_TO} points, scipy's t "
          f"approximation beyond); a leader is named only when its 95% interval lies wholly "
          f"above (or below) the runner-up's, never for equal scores; a [0, 1] ability is at the "
          f"floor when every score is 0 or its upper bound is below {FLOOR}, at the ceiling when "
          f"every score is 1 or its lower bound is above {CEILING}.")


@dataclass(frozen=True)
class Estimate:
    """One score to compare: a trial, a strategy's cell, one amount. `low`/`high` are None when
    the runs behind it logged no interval (older runs): then nothing is derived."""
    name: str
    score: float
    low: float | None = None
    high: float | None = None

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    def text(self) -> str:
        if not self.has_interval:
            return f"{self.score:.3f} (no interval)"
        return f"{self.score:.3f} [{self.low:.3f}, {self.high:.3f}]"


def mean_interval(scores: list[float], bounds: list[tuple[float, float, int] | None],
                  limits: tuple[float, float] = (-math.inf, math.inf)
                  ) -> tuple[float, float, int] | None:
    """The 95% interval of the mean of repeats (seeds of one point, or the rows of one cell),
    or None when any repeat has no interval. Repeats are scored on the same evaluation problems,
    so averaging them does not shrink the problem-sampling error: its half-widths are averaged,
    not divided by √m. Seed-to-seed noise does average out: a t interval of the mean of the m
    scores. The two are independent sources, added in quadrature on each side (Wilson intervals
    are asymmetric near 0 and 1). n is the smallest problem count among the repeats. The interval
    is clipped to `limits`, the score's range: a t interval over two repeats runs far past it."""
    if not scores or any(b is None for b in bounds):
        return None
    m = len(scores)
    mean = statistics.fmean(scores)
    below = statistics.fmean(s - b[0] for s, b in zip(scores, bounds))
    above = statistics.fmean(b[1] - s for s, b in zip(scores, bounds))
    seeds = 0.0
    if m > 1:
        seeds = float(student_t.ppf(0.5 + CONFIDENCE / 2, m - 1)) * \
            statistics.stdev(scores) / math.sqrt(m)
    return (max(mean - math.hypot(below, seeds), limits[0]),
            min(mean + math.hypot(above, seeds), limits[1]), min(int(b[2]) for b in bounds))


def spearman(xs, ys) -> tuple[float, float]:
    """Spearman's ρ and its two-sided p. Up to EXACT_UP_TO points the p is exact (every ordering
    of x against y): scipy's t approximation gives p = 0 for a perfect ρ on 4 points, where the
    exact p is 0.083, so a small sweep would claim trends it cannot support."""
    rho = float(spearmanr(xs, ys).statistic)
    if len(xs) > EXACT_UP_TO:
        return rho, float(spearmanr(xs, ys).pvalue)
    ry = rankdata(ys)
    ry = (ry - ry.mean()) / np.linalg.norm(ry - ry.mean())

    def ranks_rho(rx, axis=-1):  # the Pearson correlation of ranks, vectorized over orderings
        rx = rx - rx.mean(axis=axis, keepdims=True)
        return (rx * ry).sum(axis=axis) / np.linalg.norm(rx, axis=axis)

    res = permutation_test((rankdata(xs),), ranks_rho, permutation_type="pairings",
                           n_resamples=np.inf, vectorized=True, alternative="two-sided")
    return rho, float(res.pvalue)


def separated(a: Estimate, b: Estimate) -> bool | None:
    """True when the intervals do not overlap (one's lower bound above the other's upper
    bound); None when either has no interval, so the difference is untested."""
    if not (a.has_interval and b.has_interval):
        return None
    return a.low > b.high or b.low > a.high


def _unit(e: Estimate) -> bool:
    return all(0.0 <= v <= 1.0 for v in (e.score, e.low, e.high) if v is not None)


def pinned(estimates: list[Estimate]) -> str | None:
    """'floor' or 'ceiling' when every estimate sits there, else None. Only for scores in
    [0, 1] (pass rates, accuracies, F1). A score of exactly 0 (1) counts as at the floor
    (ceiling) even with an interval: 0 of 64 has a Wilson upper bound of 0.057, so the bound
    alone could never flag the 64-problem sets these sweeps evaluate on."""
    if not estimates or not all(_unit(e) for e in estimates):
        return None
    if all(e.score == 0 or (e.has_interval and e.high < FLOOR) for e in estimates):
        return "floor"
    if all(e.score == 1 or (e.has_interval and e.low > CEILING) for e in estimates):
        return "ceiling"
    return None


def ranked(estimates: list[Estimate], direction: str) -> list[Estimate]:
    return sorted(estimates, key=lambda e: e.score, reverse=direction == "max")


def compare(estimates: list[Estimate], direction: str) -> tuple[str, list[Estimate]]:
    """Who leads, if anyone: ('single', [a]), ('tie', those sharing the best score), ('lead',
    [leader, runner-up]) when their intervals are apart, ('untested', [leader, runner-up]) when
    either has no interval, or ('noise', the leader and every estimate whose interval overlaps
    the leader's)."""
    order = ranked(estimates, direction)
    if len(order) == 1:
        return "single", order
    top = [e for e in order if e.score == order[0].score]
    if len(top) > 1:  # equal scores: naming one of them would be an accident of sort order
        return "tie", top
    leader, runner = order[0], order[1]
    apart = separated(leader, runner)
    if apart is None:
        return "untested", [leader, runner]
    if apart:
        return "lead", [leader, runner]
    return "noise", [leader] + [e for e in order[1:] if separated(leader, e) is False]
