import optuna
import pytest

from sftmix_ray.config import ConfigError, validate_data
from sftmix_ray.search.spaces import DefineByRun, SearchSpace, describe, grid_points

BASE = {"domains": ["math", "code", "general"], "specialized": ["math", "code"],
        "strategies": {"multi_task": {}, "dmt": {"k": [1, 0.25]}}}


def space(**mixture) -> SearchSpace:
    return validate_data(SearchSpace, {**BASE, **mixture}, "space.yaml")


def test_fraction_grids_cross_the_choices_per_domain():
    s = space(fractions={"choices": {"math": [1, 0.25], "code": [0, 1 / 256]}})
    points = grid_points(s)
    mixtures = [p["fractions"] for p in points if p["strategy"] == "multi_task"]
    assert mixtures == [{"math": 1, "code": 0}, {"math": 1, "code": 1 / 256},
                        {"math": 0.25, "code": 0}, {"math": 0.25, "code": 1 / 256}]
    assert len(points) == 4 * 3  # multi_task + dmt at two k
    assert describe(points[3]) == "math=1 code=1/256 (fractions)"


def test_counts_and_explicit_grids():
    s = space(counts={"grid": [{"math": 100}, {"math": 50, "general": 50}]})
    assert [p["counts"] for p in grid_points(s)][:2] == [{"math": 100}, {"math": 100}]
    with pytest.raises(ConfigError, match="whole numbers"):
        space(counts={"grid": [{"math": 10.5}]})


@pytest.mark.parametrize("mixture,message", [
    ({}, "give exactly one mixture"),
    ({"amount": {"choices": [10]}, "fractions": {"grid": [{"math": 1}]}}, "got \\['ratio×amount', "
                                                                         "'fractions'\\]"),
    ({"ratio": {"kind": "simplex"}}, "needs an 'amount'"),
    ({"fractions": {"grid": [{"poetry": 1}]}}, "undeclared domains \\['poetry'\\]"),
    ({"fractions": {"grid": [{"math": 1}], "choices": {"math": [1]}}}, "exactly one of 'grid'"),
])
def test_mixture_meanings_are_exclusive_in_space_files(mixture, message):
    with pytest.raises(ConfigError, match=message):
        space(**mixture)


def test_define_by_run_suggests_fractions_per_domain():
    s = space(fractions={"choices": {"math": [1, 0.25], "general": [1 / 64]}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    point = DefineByRun(s)(trial)
    assert set(point["fractions"]) == {"math", "general"}
    assert point["fractions"]["math"] in (1, 0.25) and point["fractions"]["general"] == 1 / 64
    assert set(trial.params) >= {"fractions.math", "fractions.general", "strategy"}


def test_a_strategy_of_your_own_is_a_stage_list():
    from sftmix_ray.strategies import plan_stages

    s = space(amount={"choices": [100]}, strategies={
        "code_first": {"stages": [{"domains": ["code"], "epochs": 1},
                                  {"name": "rest", "domains": ["math", "general"],
                                   "replay": {"code": 0.25}}]}})
    counts = {"math": 40, "code": 40, "general": 20}
    stages = plan_stages("code_first", counts, s.specialized, custom=s.options("code_first").stages)
    assert [(st.name, st.counts, st.epochs) for st in stages] == [
        ("stage0", {"code": 40}, 1), ("rest", {"math": 40, "general": 20, "code": 10}, None)]
    with pytest.raises(ConfigError, match="needs 'stages'"):
        space(amount={"choices": [100]}, strategies={"curriculum": {}})
    with pytest.raises(ConfigError, match="undeclared domains \\['poetry'\\]"):
        space(amount={"choices": [100]},
              strategies={"mine": {"stages": [{"domains": ["poetry"]}]}})


def test_warm_start_points_are_suggested_first_and_constraints_read_objectives(write_sweep):
    import yaml

    from sftmix_ray.config import load_sweep
    from sftmix_ray.search.tuner import Constraints, build_searcher

    path = write_sweep()
    data = yaml.safe_load(path.read_text())
    dmt = {"ratio": {"math": 0.4, "code": 0.4, "general": 0.2}, "amount": 100,
           "strategy": "dmt", "k": 0.25}
    data["search"].update(algorithm="tpe", warm_start=[dmt], constraints={"general": 0.3})
    path.write_text(yaml.safe_dump(data))
    sweep, sp = load_sweep(path)
    searcher = build_searcher(sweep, sp)
    config = searcher.suggest("t0")
    assert config["strategy"] == "dmt" and config["dmt_k"] == 0.25 and config["amount"] == 100
    assert config["ratio"] == pytest.approx(dmt["ratio"])
    cons = Constraints({"general": 0.3, "loss": 2.0}, {"math": "max", "general": "max",
                                                       "loss": "min"})
    ok = optuna.trial.create_trial(values=[0.1, 0.5, 1.0], distributions={}, params={})
    bad = optuna.trial.create_trial(values=[0.9, 0.2, 3.0], distributions={}, params={})
    assert all(v <= 0 for v in cons(ok)) and all(v > 0 for v in cons(bad))
