"""`online` as one more strategy of a space: validated, sampled by Optuna (its knobs searched),
enqueued as a warm start, crossed in grids, planned into one stage whose manifest hash carries
the knobs, and encoded (and proposed) by the surrogate."""

import optuna
import pytest
from pydantic import ValidationError

from sftmix_ray.analysis.records import point_from_params, point_key
from sftmix_ray.analysis.surrogate import Encoder
from sftmix_ray.config.point import TrialPoint
from sftmix_ray.config.space import SearchSpace
from sftmix_ray.plan.strategies import plan_stages
from sftmix_ray.search.proposals import random_points
from sftmix_ray.search.sampling import DefineByRun, grid_points, raw_params

SPACE = {"domains": ["math", "code", "general"], "specialized": ["math", "code"],
         "amount": {"low": 100, "high": 400},
         "strategies": {"multi_task": {},
                        "online": {"methods": ["exp3", "doremi"],
                                   "step_size": {"low": 0.1, "high": 3, "log": True},
                                   "update_every": {"choices": [2, 8]}}}}


def test_the_knobs_belong_to_online_and_are_checked():
    bad = {**SPACE, "strategies": {"multi_task": {"step_size": {"choices": [1]}}}}
    with pytest.raises(ValidationError, match="belong to strategy 'online'"):
        SearchSpace.model_validate(bad)
    for knob, value, msg in [("smoothing", [1.0], "smoothing"), ("warmup", [1.5], "warmup"),
                             ("update_every", [0.5], "update_every"),
                             ("step_size", [0], "step_size")]:
        bad = {**SPACE, "strategies": {"online": {knob: {"choices": value}}}}
        with pytest.raises(ValidationError, match=msg):
            SearchSpace.model_validate(bad)
    with pytest.raises(ValidationError):
        SearchSpace.model_validate({**SPACE, "strategies": {"online": {"methods": ["odm"]}}})


def test_optuna_searches_the_knobs_and_a_point_goes_back_in_as_a_warm_start():
    space = SearchSpace.model_validate(SPACE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    define = DefineByRun(space)
    seen = []
    for _ in range(30):
        trial = study.ask()
        point = TrialPoint.from_wire(define(trial)["point"])
        study.tell(trial, 0.0)
        if point.strategy == "online":
            seen.append(point.online)
            assert 0.1 <= point.online["step_size"] <= 3
            assert point.online["update_every"] in (2, 8)
            assert (point.online["smoothing"], point.online["warmup"]) == (0.1, 0.1)  # defaults
            assert ("reference" in point.online) == (point.online["method"] == "doremi")
            assert space.check_point(point) == []
            raw = raw_params(point, space)  # what Optuna enqueues for this warm start
            again = optuna.create_study()
            again.enqueue_trial(raw)
            assert TrialPoint.from_wire(define(again.ask())["point"]) == point
    assert {o["method"] for o in seen} == {"exp3", "doremi"}
    wrong = TrialPoint(strategy="online", ratio={"math": 1}, amount=100,
                       online={"method": "ado"})
    assert "online method 'ado'" in space.check_point(wrong)[0]


def test_a_grid_crosses_methods_and_choices_and_refuses_ranges():
    grid = {**SPACE, "amount": {"choices": [100]},
            "strategies": {"online": {"update_every": {"choices": [2, 8]}}}}
    points = grid_points(SearchSpace.model_validate({**grid, "ratio": {"grid": [
        {"math": 1, "code": 1, "general": 1}]}}))
    assert sorted((p.online["method"], p.online["update_every"]) for p in points) == \
        [("doremi", 2), ("doremi", 8), ("exp3", 2), ("exp3", 8)]
    with pytest.raises(ValueError, match="needs choices"):
        grid_points(SearchSpace.model_validate({**SPACE, "amount": {"choices": [100]},
                                                "ratio": {"grid": [{"math": 1}]}}))


def test_an_online_plan_is_one_stage_whose_counts_are_the_prior():
    counts = {"math": 50, "code": 30, "general": 20}
    knobs = {"method": "exp3", "step_size": 1.0}
    (stage,) = plan_stages("online", counts, ["math", "code"], online=knobs)
    assert stage.counts == counts and stage.online == knobs
    with pytest.raises(ValueError, match="method"):
        plan_stages("online", counts, [], online={"method": "nope"})


def test_params_round_trip_and_the_surrogate_encodes_online_points():
    space = SearchSpace.model_validate(SPACE)
    point = TrialPoint(strategy="online", ratio={"math": 0.5, "code": 0.3, "general": 0.2},
                       amount=200, online={"method": "doremi", "step_size": 0.3,
                                           "smoothing": 0.1, "warmup": 0.1, "update_every": 8,
                                           "reference": "base"})
    params = {k: str(v) for k, v in point.flat_params().items()}
    back = point_from_params(params)
    assert back["online"] == point.online
    assert point_key(back) == point_key(point.to_wire())
    other = {**point.to_wire(), "online": {**point.online, "step_size": 1.0}}
    assert point_key(other) != point_key(point.to_wire())  # knobs tell points apart
    enc = Encoder(space)
    names = enc.names()
    assert {"variant.online:exp3", "variant.online:doremi", "online.step_size",
            "online.update_every"} <= set(names)
    x = dict(zip(names, enc(point.to_wire())))
    assert x["variant.online:doremi"] == 1 and x["variant.online:exp3"] == 0
    assert 0 < x["online.step_size"] < 1 and x["online.update_every"] == 1
    static = dict(zip(names, enc({"strategy": "multi_task", "ratio": {"math": 1},
                                   "amount": 100})))
    assert static["variant.multi_task"] == 1 and static["online.step_size"] == 0


def test_proposal_candidates_draw_online_knobs_inside_the_space():
    import numpy as np

    space = SearchSpace.model_validate(SPACE)
    pts = [TrialPoint.from_wire(p) for p in random_points(space, 200, np.random.default_rng(0))]
    online = [p for p in pts if p.strategy == "online"]
    assert online and len({p.online["step_size"] for p in online}) > 10
    assert all(0.1 <= p.online["step_size"] <= 3 and p.online["update_every"] in (2, 8)
               and space.check_point(p) == [] for p in online)
