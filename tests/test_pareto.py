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
