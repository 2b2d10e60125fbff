"""The trial point: one shape for Optuna and grid trials, its wire form, its labels and params,
and what a trial validates again (only what the point changes)."""

import pytest
from pydantic import ValidationError

from sftmix_ray.config import SearchSpace, SweepConfig, TrialPoint, load_sweep, validate_data

SPACE = {"domains": ["math", "code", "general"], "specialized": ["math", "code"],
         "amount": {"choices": [100, 200]},
         "strategies": {"multi_task": {}, "dmt": {"k": [1, 0.25]},
                        "sequential": {"orders": [["code", "math", "general"]]}},
         "train": {"lr": {"low": 1e-4, "high": 1e-2, "log": True}}}


def test_the_wire_form_round_trips_and_leaves_out_what_is_unset():
    p = TrialPoint(strategy="dmt", k=0.25, ratio={"math": 0.5, "code": 0.5}, amount=100,
                   train={"lr": 1e-3, "epochs": 2}, seed=3)
    wire = p.to_wire()
    assert "order" not in wire and "fractions" not in wire
    assert TrialPoint.from_wire(wire) == p
    assert isinstance(TrialPoint.from_wire(wire).train["epochs"], int)  # ints stay ints
    assert TrialPoint.of_trial({"point": wire, "u0": 0.3}) == p  # Optuna's raw names ignored
    with pytest.raises(ValidationError, match="ratioo"):
        TrialPoint.from_wire({"strategy": "dmt", "ratioo": {}})


def test_labels_and_mlflow_params():
    p = TrialPoint(strategy="sequential", order=["code", "math"], ratio={"math": 0.25,
                   "code": 0.75}, amount=40, train={"lr": 5e-4}, seed=1)
    assert p.describe() == "25% math · 75% code, 40 samples"
    assert p.settings() == " order=code>math lr=0.0005 seed=1"
    assert p.flat_params() == {"ratio.math": 0.25, "ratio.code": 0.75, "mixture": "ratio",
                               "amount": 40, "strategy": "sequential", "order": "code>math",
                               "train.lr": 5e-4, "seed": 1}
    f = TrialPoint(strategy="dmt", k=0.0625, fractions={"math": 1.0, "code": 1 / 256})
    assert f.describe() == "fractions of each domain: 1 math · 1/256 code" and \
        f.settings() == " k=1/16"
    assert f.mixture_kind == "fractions" and f.mixture() == {"fractions": f.fractions}
    back = TrialPoint.from_params({k: str(v) for k, v in f.flat_params().items()})
    assert (back.strategy, back.k) == ("dmt", 0.0625)
    assert back.fractions == pytest.approx(f.fractions, abs=1e-6)  # params keep 6 decimals


def test_a_trial_validates_only_what_its_point_changes(write_sweep):
    sweep, _ = load_sweep(write_sweep())
    same = sweep.for_trial(TrialPoint(strategy="multi_task", ratio={"math": 1}, amount=10))
    assert same is sweep  # nothing searched: nothing re-validated, nothing copied
    trial = sweep.for_trial(TrialPoint(strategy="multi_task", ratio={"math": 1}, amount=10,
                                       train={"lr": 1e-4, "epochs": 2}, seed=7))
    assert (trial.train.lr, trial.train.epochs, trial.train.seed) == (1e-4, 2, 7)
    assert trial.evaluate is sweep.evaluate and sweep.train.seed == 0
    with pytest.raises(ValidationError, match="epochs"):
        sweep.for_trial(TrialPoint(strategy="multi_task", train={"epochs": 0}))
    assert isinstance(trial, SweepConfig)


@pytest.mark.parametrize("given,problem", [
    ({"strategy": "mixed_sequential", "ratio": {"math": 1}, "amount": 100}, "not in the space"),
    ({"strategy": "dmt", "k": 0.5, "ratio": {"math": 1}, "amount": 100, "train": {"lr": 1e-3}},
     "k 0.5 is not one of the space's DMT k"),
    ({"strategy": "multi_task", "ratio": {"math": 1}, "amount": 100}, "give their values"),
    ({"strategy": "multi_task", "fractions": {"math": 1}, "train": {"lr": 1e-3}},
     "a fractions mixture"),
    ({"strategy": "sequential", "order": ["math", "code", "general"], "ratio": {"math": 1},
      "amount": 100, "train": {"lr": 1e-3}}, "not one of the space's orders"),
])
def test_a_warm_start_that_does_not_fit_the_space_says_why(given, problem):
    space = validate_data(SearchSpace, SPACE, "space.yaml")
    problems = space.check_point(TrialPoint.from_wire(given))
    assert any(problem in p for p in problems), problems
    fits = {"strategy": "dmt", "k": 0.25, "ratio": {"math": 1}, "amount": 100,
            "train": {"lr": 1e-3}}
    assert space.check_point(TrialPoint.from_wire(fits)) == []
