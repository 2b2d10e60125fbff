import math

import numpy as np
import pytest

from sftmix_ray.pareto import front_of, hypervolume, pareto_mask

OBJ = {"math": "max", "code": "max", "general": "max"}


def test_front_on_hand_made_points():
    rows = [
        {"id": "a", "math": 0.5, "code": 0.1, "general": 0.3},
        {"id": "b", "math": 0.2, "code": 0.4, "general": 0.3},
        {"id": "c", "math": 0.2, "code": 0.1, "general": 0.2},  # dominated by a and b
        {"id": "d", "math": 0.1, "code": 0.1, "general": 0.9},
        {"id": "e", "math": 0.5, "code": 0.1, "general": 0.3},  # tie with a: both kept
    ]
    assert [r["id"] for r in front_of(rows, OBJ)] == ["a", "b", "d", "e"]


def test_minimized_objective_flips_dominance():
    mask = pareto_mask(np.array([[1.0, 10.0], [2.0, 5.0], [0.5, 20.0]]), [True, False])
    # (2, 5): highest first objective and lowest second: dominates both others.
    assert mask.tolist() == [False, True, False]


def test_rows_missing_an_objective_are_left_out():
    rows = [{"math": 0.1, "code": 0.2, "general": None},
            {"math": float("nan"), "code": 1, "general": 1},
            {"math": 0.0, "code": 0.0, "general": 0.0}]
    assert front_of(rows, OBJ) == [rows[2]]
    assert front_of([], OBJ) == []


def test_hypervolume_of_a_box():
    rows = [{"math": 0.5, "code": 0.5, "general": 0.5}]
    assert math.isclose(hypervolume(rows, OBJ, {"math": 0, "code": 0, "general": 0}), 0.125)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        pareto_mask(np.zeros((3, 2)), [True, True, True])


def test_dominance_beyond_noise_reads_each_objective_through_its_interval():
    from sftmix_ray.pareto import dominates_beyond_noise

    up = [True, True]
    # better beyond noise on the first, tied at the ceiling on the second: beaten
    assert dominates_beyond_noise([0.68, 0.90], [0.80, 1.0], [0.40, 0.90], [0.55, 1.0], up)
    # better beyond noise on the first, worse beyond noise on the second: not beaten
    assert not dominates_beyond_noise([0.68, 0.10], [0.80, 0.30], [0.40, 0.80], [0.55, 1.0], up)
    # every difference inside the intervals: not beaten
    assert not dominates_beyond_noise([0.50, 0.50], [0.70, 0.70], [0.45, 0.45], [0.65, 0.65], up)
    # a minimized objective: lower is better, worst end is the high one
    assert dominates_beyond_noise([2.0], [1.0], [5.0], [3.0], [False])
    assert not dominates_beyond_noise([3.5], [1.0], [5.0], [3.0], [False])
