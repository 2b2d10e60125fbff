import pytest

from sftmix_ray.data.mixture import apportion, domain_order, select_prefix
from sftmix_ray.search.spaces import stick_breaking
from sftmix_ray.strategies import plan_stages


@pytest.mark.parametrize("amount", [1, 7, 100, 999, 4001])
def test_apportion_totals_are_exact(amount):
    counts = apportion({"math": 1 / 3, "code": 1 / 3, "general": 1 / 3}, amount)
    assert sum(counts.values()) == amount
    assert max(counts.values()) - min(counts.values()) <= 1


def test_apportion_is_deterministic_and_follows_the_ratio():
    assert apportion({"a": 0.5, "b": 0.25, "c": 0.25}, 10) == {"a": 5, "b": 3, "c": 2}
    assert apportion({"a": 0.0, "b": 1.0}, 10) == {"a": 0, "b": 10}


def test_selections_are_nested_and_seeded():
    order = domain_order("math", 1000, seed=0)
    small, large = select_prefix(order, 4, "math"), select_prefix(order, 64, "math")
    assert set(small) <= set(large)
    assert (domain_order("math", 1000, 0) == order).all()
    assert not (domain_order("math", 1000, 1) == order).all()
    with pytest.raises(ValueError, match="math"):
        select_prefix(order, 1001, "math")


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
