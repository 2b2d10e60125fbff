import optuna
import pytest

from sftmix_ray.config import ConfigError, validate_data
from sftmix_ray.config.point import TrialPoint
from sftmix_ray.config.space import SearchSpace
from sftmix_ray.search.sampling import DefineByRun, grid_points

BASE = {"domains": ["math", "code", "general"], "specialized": ["math", "code"],
        "strategies": {"multi_task": {}, "dmt": {"k": [1, 0.25]}}}


def space(**mixture) -> SearchSpace:
    return validate_data(SearchSpace, {**BASE, **mixture}, "space.yaml")


def test_fraction_grids_cross_the_choices_per_domain():
    s = space(fractions={"choices": {"math": [1, 0.25], "code": [0, 1 / 256]}})
    points = grid_points(s)
    mixtures = [p.fractions for p in points if p.strategy == "multi_task"]
    assert mixtures == [{"math": 1, "code": 0}, {"math": 1, "code": 1 / 256},
                        {"math": 0.25, "code": 0}, {"math": 0.25, "code": 1 / 256}]
    assert len(points) == 4 * 3  # multi_task + dmt at two k
    assert points[3].describe() == "fractions of each domain: 1 math · 1/256 code"


def test_counts_and_explicit_grids():
    s = space(counts={"grid": [{"math": 100}, {"math": 50, "general": 50}]})
    assert [p.counts for p in grid_points(s)][:2] == [{"math": 100}, {"math": 100}]
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
    point = DefineByRun(s)(trial)["point"]
    assert set(point["fractions"]) == {"math", "general"}
    assert point["fractions"]["math"] in (1, 0.25) and point["fractions"]["general"] == 1 / 64
    assert set(trial.params) >= {"fractions.math", "fractions.general", "strategy"}


def test_a_strategy_of_your_own_is_a_stage_list():
    from sftmix_ray.plan.strategies import plan_stages

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
    from sftmix_ray.search.searcher import Constraints, build_searcher

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
    point = config["point"]  # the complete point, whatever Optuna's raw names
    assert (point["strategy"], point["k"], point["amount"]) == ("dmt", 0.25, 100)
    assert point["ratio"] == pytest.approx(dmt["ratio"])
    cons = Constraints({"general": 0.3, "loss": 2.0}, {"math": "max", "general": "max",
                                                       "loss": "min"})
    assert all(v <= 0 for v in cons.values({"math": 0.1, "general": 0.5, "loss": 1.0}).values())
    assert all(v > 0 for v in cons.values({"math": 0.9, "general": 0.2, "loss": 3.0}).values())
    assert cons.values({"general": float("nan"), "loss": 1.0}) is None

    # What Optuna is told: the trial's constraint values (Optuna 5's set_constraint), a NaN
    # result as a failed trial, and an intermediate last result (a pruned trial) as PRUNED.
    searcher.on_trial_complete("t0", {"math": 0.5, "code": 0.1, "general": 0.2})
    searcher.suggest("t1")
    searcher.on_trial_complete("t1", {"math": float("nan"), "code": 0.1, "general": 0.4})
    searcher.suggest("t2")
    searcher.on_trial_complete("t2", {"sftmix_intermediate": 1, "math": 0.3, "code": 0.0,
                                      "general": 0.4})
    searcher.suggest("t3")
    searcher.on_trial_complete("t3", {"math": 0.1, "code": float("inf"), "general": 0.4})
    t0, t1, t2, t3 = searcher._ot_study.trials
    assert t3.state == optuna.trial.TrialState.FAIL
    assert t0.state == optuna.trial.TrialState.COMPLETE
    assert t0.constraints == {"general": pytest.approx(0.1)}  # 0.2 < 0.3: infeasible
    assert t1.state == optuna.trial.TrialState.FAIL
    assert t2.state == optuna.trial.TrialState.PRUNED and t2.values is None


def test_training_hyperparameters_are_searched_with_the_mixture():
    s = space(amount={"choices": [100]},
              train={"lr": {"low": 1e-4, "high": 1e-2, "log": True},
                     "epochs": {"choices": [1, 3]}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        trial = study.ask()
        point = DefineByRun(s)(trial)["point"]
        assert 1e-4 <= point["train"]["lr"] <= 1e-2 and point["train"]["epochs"] in (1, 3)
        assert isinstance(point["train"]["epochs"], int)
        assert trial.params["train.lr"] == point["train"]["lr"]
    grid = grid_points(space(amount={"choices": [100]}, ratio={"kind": "fixed",
                                                                "fixed": {"math": 1}},
                             train={"epochs": {"choices": [1, 3]}}))
    assert [(p.strategy, p.k, p.train) for p in grid] == [
        ("multi_task", None, {"epochs": 1}), ("multi_task", None, {"epochs": 3}),
        ("dmt", 1, {"epochs": 1}), ("dmt", 1, {"epochs": 3}),
        ("dmt", 0.25, {"epochs": 1}), ("dmt", 0.25, {"epochs": 3})]
    with pytest.raises(ConfigError, match="train.epochs.*whole numbers"):
        space(amount={"choices": [100]}, train={"epochs": {"choices": [1.5]}})
    with pytest.raises(ConfigError, match="train.lr.*log range needs low > 0"):
        space(amount={"choices": [100]}, train={"lr": {"low": 0, "high": 1, "log": True}})
    with pytest.raises(ConfigError, match="train.lrr.*did you mean 'lr'"):
        space(amount={"choices": [100]}, train={"lrr": {"choices": [1e-3]}})


def test_searched_hyperparameters_reach_the_trial_and_its_params():
    from sftmix_ray.config import TrainConfig

    sweep = __import__("sftmix_ray.config", fromlist=["SweepConfig"]).SweepConfig.model_construct(
        train=TrainConfig(lr=1e-3, epochs=3, lora={"r": 8, "alpha": 16}))
    point = TrialPoint(strategy="sequential", ratio={"math": 1.0}, amount=10,
                       order=["code", "math"], train={"lr": 5e-4, "lora_r": 32})
    out = sweep.for_trial(point)
    assert (out.train.lr, out.train.epochs, out.train.lora.r, out.train.lora.alpha) == \
        (5e-4, 3, 32, 16)
    assert sweep.train.lora.r == 8  # the sweep itself is left alone
    params = point.flat_params()
    assert params["order"] == "code>math" and params["train.lr"] == 5e-4


def test_sequential_orders_are_a_conditional_categorical(write_sweep):
    import yaml

    from sftmix_ray.config import load_sweep
    from sftmix_ray.plan.manifest import build_plan  # noqa: F401  (the order reaches plan_stages there)

    orders = [["code", "math", "general"], ["math", "code", "general"]]
    s = space(amount={"choices": [100]},
              strategies={"multi_task": {}, "sequential": {"orders": orders}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        point = DefineByRun(s)(trial)["point"]
        if point["strategy"] == "sequential":
            assert point["order"] in orders
            seen.add(tuple(point["order"]))
        else:
            assert "order" not in point and "sequential_order" not in trial.params
    assert len(seen) == 2
    grid = [p for p in grid_points(space(amount={"choices": [100]}, ratio={"kind": "fixed",
                                                                            "fixed": {"math": 1}},
                                         strategies={"sequential": {"orders": orders}}))]
    assert [p.order for p in grid] == orders
    with pytest.raises(ConfigError, match="'order'.*or 'orders'"):
        space(amount={"choices": [100]},
              strategies={"sequential": {"order": orders[0], "orders": orders}})
    # an order that misses a domain, and LoRA settings for a full fine-tune, name their fields
    path = write_sweep()
    data = yaml.safe_load(path.read_text())
    space_path = path.parent / data["search"]["space"]
    sp = yaml.safe_load(space_path.read_text())
    sp["strategies"] = {"sequential": {"orders": [["code", "math"]]}}
    sp["train"] = {"lora_r": {"choices": [8]}}
    space_path.write_text(yaml.safe_dump(sp))
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    assert "strategies.sequential.orders: ['code', 'math'] must list each domain" in str(info.value)
    assert "search.space.train.lora_r: the sweep trains every weight" in str(info.value)
