"""RegMix (search/regmix.py): Dirichlet proxies, the regression per ability, top-k averages."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sftmix_ray.analysis.records import Record, point_key
from sftmix_ray.config.space import SearchSpace
from sftmix_ray.search.regmix import RegMix, average_points, dirichlet_points, regmix_propose

DOMAINS = ["math", "code", "general"]
OBJECTIVES = {"math": "max", "code": "max"}


def space(amount=None):
    return SearchSpace.model_validate({
        "domains": DOMAINS, "specialized": ["math", "code"], "ratio": {"kind": "simplex"},
        "amount": amount or {"low": 1000, "high": 4000, "log": True},
        "strategies": {"multi_task": {}, "dmt": {"k": [0.0625]}}})


def lab(point):
    """A landscape with a known answer: math peaks at a math share of 0.7, code rises with its
    share, and DMT costs a little of both."""
    r, dmt = point["ratio"], 0.05 if point["strategy"] == "dmt" else 0.0
    return {"math": 1 - (r["math"] - 0.7) ** 2 - dmt, "code": r["code"] - dmt}


def records(n, seed=0, sp=None):
    pts = dirichlet_points(sp or space(), n, np.random.default_rng(seed))
    return [Record(p, lab(p)) for p in pts]


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 40), st.floats(0.1, 5.0), st.integers(0, 10**6))
def test_dirichlet_points_lie_in_the_space(n, concentration, seed):
    sp = space()
    pts = dirichlet_points(sp, n, np.random.default_rng(seed), concentration)
    assert len(pts) == n
    for p in pts:
        assert abs(sum(p["ratio"].values()) - 1) < 1e-9 and min(p["ratio"].values()) >= 0
        assert 1000 <= p["amount"] <= 4000
        assert p["strategy"] in {"multi_task", "dmt"}


def test_a_small_concentration_draws_nearer_the_corners():
    rng = np.random.default_rng(0)
    spread = {c: np.mean([max(p["ratio"].values()) for p in
                          dirichlet_points(space(), 400, rng, c)]) for c in (0.2, 5.0)}
    assert spread[0.2] > spread[5.0] + 0.2


def test_the_regression_ranks_held_out_mixtures_as_the_lab_does():
    model = RegMix(space(), list(OBJECTIVES), records(60))
    held = dirichlet_points(space(), 200, np.random.default_rng(99))
    truth = np.array([[lab(p)[o] for o in OBJECTIVES] for p in held])
    pred = model.predict(held)
    for j in range(len(OBJECTIVES)):
        assert np.corrcoef(pred[:, j], truth[:, j])[0, 1] > 0.8


def test_proposals_are_distinct_points_of_the_space_near_the_optimum_of_each_weighting():
    model = RegMix(space({"choices": [4000]}), list(OBJECTIVES),
                   records(60, sp=space({"choices": [4000]})))
    props = regmix_propose(model, OBJECTIVES, 6, seed=1)
    assert len(props) == 6 and len({point_key(p) for p in props}) == 6
    for p in props:
        assert p["amount"] == 4000 and abs(sum(p["ratio"].values()) - 1) < 1e-9
    # equal weights first: a compromise with math near its peak share and code above nothing
    first = props[0]["ratio"]
    assert 0.3 < first["math"] < 0.9 and first["code"] > 0.1
    assert props[0]["strategy"] == "multi_task"  # DMT costs both abilities here
    # the weightings spread the proposals along the front: math shares differ
    assert np.ptp([p["ratio"]["math"] for p in props]) > 0.15


def test_a_minimized_objective_is_turned_around():
    recs = records(60)
    model = RegMix(space(), ["math"], recs)
    best = regmix_propose(model, {"math": "max"}, 1)[0]
    worst = regmix_propose(model, {"math": "min"}, 1)[0]
    assert lab(best)["math"] > lab(worst)["math"] + 0.2


def test_the_top_k_average_averages_ratios_and_amounts_of_the_common_variant():
    pts = [{"strategy": "dmt", "k": 0.0625, "ratio": {"math": 1.0, "code": 0.0, "general": 0.0},
            "amount": 1000},
           {"strategy": "multi_task", "ratio": {"math": 0.0, "code": 1.0, "general": 0.0},
            "amount": 4000},
           {"strategy": "multi_task", "ratio": {"math": 0.0, "code": 0.0, "general": 1.0},
            "amount": 1000}]
    avg = average_points(space(), pts)
    assert avg["strategy"] == "multi_task" and "k" not in avg
    assert avg["ratio"] == {"math": 0.0, "code": 0.5, "general": 0.5}
    assert avg["amount"] == 2000  # the geometric mean of 4000 and 1000
    assert average_points(space({"choices": [1000, 4000]}), pts[1:])["amount"] in (1000, 4000)


def test_regmix_needs_two_trials():
    import pytest

    with pytest.raises(ValueError, match="at least two"):
        RegMix(space(), ["math"], records(1))
