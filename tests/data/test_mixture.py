import numpy as np
import pytest

from sftmix_ray.data.mixture import (
    MixtureError,
    apportion,
    domain_order,
    fraction_count,
    resolve_counts,
    select_indices,
)

DOMAINS = ["math", "code", "general"]
SIZES = {"math": 7473, "code": 4000, "general": 1000}
NO_UPSAMPLE = {d: False for d in DOMAINS}


@pytest.mark.parametrize("amount", [1, 7, 100, 999, 4001])
def test_apportion_totals_are_exact(amount):
    counts = apportion({"math": 1 / 3, "code": 1 / 3, "general": 1 / 3}, amount)
    assert sum(counts.values()) == amount
    assert max(counts.values()) - min(counts.values()) <= 1


def test_apportion_is_deterministic_and_follows_the_ratio():
    assert apportion({"a": 0.5, "b": 0.25, "c": 0.25}, 10) == {"a": 5, "b": 3, "c": 2}
    assert apportion({"a": 0.0, "b": 1.0}, 10) == {"a": 0, "b": 10}
    # 0.7/0.2/0.1 of 3: quotas 2.1/0.6/0.3 -> floors 2/0/0, the one left goes to the largest rest
    assert apportion({"a": 0.7, "b": 0.2, "c": 0.1}, 3) == {"a": 2, "b": 1, "c": 0}


def test_the_three_mixture_meanings_resolve_to_exact_counts():
    by_ratio = resolve_counts({"ratio": {"math": 0.5, "code": 0.3, "general": 0.2}, "amount": 1001},
                              DOMAINS, SIZES, NO_UPSAMPLE)
    assert by_ratio == {"math": 501, "code": 300, "general": 200}
    by_fraction = resolve_counts({"fractions": {"math": 1 / 256, "code": 1 / 4}}, DOMAINS, SIZES,
                                 NO_UPSAMPLE)
    assert by_fraction == {"math": 29, "code": 1000, "general": 0}  # 7473/256 = 29.19
    by_count = resolve_counts({"counts": {"general": 17}}, DOMAINS, SIZES, NO_UPSAMPLE)
    assert by_count == {"math": 0, "code": 0, "general": 17}


def test_mixture_meanings_are_exclusive():
    with pytest.raises(MixtureError, match="exactly one"):
        resolve_counts({"fractions": {"math": 1}, "counts": {"code": 3}}, DOMAINS, SIZES,
                       NO_UPSAMPLE)
    with pytest.raises(MixtureError, match="exactly one"):
        resolve_counts({"ratio": {"math": 1}, "amount": 5, "counts": {"code": 3}}, DOMAINS, SIZES,
                       NO_UPSAMPLE)


def test_fraction_rounding_and_its_errors():
    assert fraction_count(0.5, 7, "m") == 4  # half up
    assert fraction_count(1 / 64, 64, "m") == 1
    with pytest.raises(MixtureError, match="rounds to 0"):
        fraction_count(1 / 256, 100, "math")
    with pytest.raises(MixtureError, match="no samples"):
        resolve_counts({"fractions": {"math": 0.0}}, DOMAINS, SIZES, NO_UPSAMPLE)


def test_more_than_a_domain_is_an_error_unless_upsampling_is_asked_for():
    point = {"counts": {"general": 2500}}
    with pytest.raises(MixtureError, match=r"general.*2500.*1000.*upsample: true"):
        resolve_counts(point, DOMAINS, SIZES, NO_UPSAMPLE)
    upsampled = resolve_counts(point, DOMAINS, SIZES, {**NO_UPSAMPLE, "general": True})
    assert upsampled["general"] == 2500
    idx = select_indices("general", 1000, 2500, seed=0)
    assert len(idx) == 2500
    counts = np.bincount(idx, minlength=1000)
    assert counts.min() == 2 and counts.max() == 3  # whole passes before any sample repeats again
    assert (idx[:1000] == select_indices("general", 1000, 1000, seed=0)).all()


def test_fraction_subsets_are_nested_and_seeded():
    fractions = [1, 1 / 4, 1 / 16, 1 / 64, 1 / 256]
    subsets = [set(select_indices("math", 7473, fraction_count(f, 7473, "math"), seed=3))
               for f in fractions]
    for larger, smaller in zip(subsets, subsets[1:]):
        assert smaller < larger
    assert len(subsets[0]) == 7473 and len(subsets[-1]) == 29
    assert (domain_order("math", 1000, 0) == domain_order("math", 1000, 0)).all()
    assert not (domain_order("math", 1000, 1) == domain_order("math", 1000, 0)).all()
    # domains are shuffled independently: the same seed does not pick the same positions
    assert not (domain_order("code", 1000, 0) == domain_order("math", 1000, 0)).all()
