"""benchmarks/search_efficiency.hindsight: the most hypervolume N of a grid's points reach, the
ceiling the search benchmarks print beside every search."""

import sys
from itertools import combinations
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from search_efficiency import hindsight, hypervolume  # noqa: E402

SCORES = st.lists(st.tuples(*[st.floats(0.0, 1.0)] * 3), min_size=1, max_size=9)


@settings(max_examples=40, deadline=None)
@given(SCORES)
def test_the_ceiling_grows_with_n_to_all_points_within_greedys_bound_of_the_best_subset(rows):
    values = np.array(rows)
    total = hypervolume(values)
    budgets = list(range(1, len(values) + 1))
    ceiling = hindsight(values, budgets)
    if total == 0:  # every point on a reference axis: nothing to reach, reached at once
        assert ceiling == [1.0] * len(budgets)
        return
    assert all(b >= a - 1e-12 for a, b in zip(ceiling, ceiling[1:]))
    assert abs(ceiling[-1] - 1.0) < 1e-9
    for n in budgets[:3]:  # the best n-subset, exhaustively: greedy is within 1 − 1/e of it
        best = max(hypervolume(values[list(c)]) for c in combinations(range(len(values)), n))
        assert ceiling[n - 1] * total <= best + 1e-12
        assert ceiling[n - 1] * total >= (1 - 1 / np.e) * best - 1e-12


def test_a_front_of_one_dominating_point_is_reached_by_one_trial():
    values = np.array([[0.9, 0.9, 0.9], [0.5, 0.2, 0.1], [0.1, 0.8, 0.3]])
    assert hindsight(values, [1, 2]) == [1.0, 1.0]
