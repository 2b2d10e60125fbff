import pytest

from sftmix_ray.plan.strategies import plan_stages
from sftmix_ray.search.sampling import stick_breaking


def test_stick_breaking_lands_on_the_simplex():
    for us in ([0.0, 0.0], [0.5, 0.5], [0.999, 0.2], [1.0, 1.0]):
        shares = stick_breaking(us)
        assert len(shares) == 3 and all(s >= -1e-12 for s in shares)
        assert abs(sum(shares) - 1) < 1e-9


def test_strategy_stage_plans():
    counts = {"math": 40, "code": 20, "general": 10}
    spec = ["math", "code"]
    assert [(s.name, s.counts) for s in plan_stages("multi_task", counts, spec)] == \
        [("multi_task", counts)]
    seq = plan_stages("sequential", counts, spec, order=["code", "math", "general"])
    assert [s.counts for s in seq] == [{"code": 20}, {"math": 40}, {"general": 10}]
    mixed = plan_stages("mixed_sequential", counts, spec)
    assert [s.counts for s in mixed] == [{"math": 40, "code": 20}, {"general": 10}]
    dmt = plan_stages("dmt", counts, spec, k=0.25)
    assert [s.counts for s in dmt] == [{"math": 40, "code": 20},
                                      {"general": 10, "math": 10, "code": 5}]
    with pytest.raises(ValueError):
        plan_stages("dmt", counts, spec, k=None)
