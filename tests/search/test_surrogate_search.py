"""The surrogate search: exact hypervolume improvement, batches that spread out, reasons and
intervals on every proposal, constraints weighed by their probability, and the Optuna sampler
that hands the proposals to trials and records them in the study."""

import math

import numpy as np
import optuna
import pytest

from sftmix_ray.analysis.records import Record, point_key
from sftmix_ray.analysis.surrogate import Surrogate
from sftmix_ray.config import SearchConfig
from sftmix_ray.config.point import POINT_KEY, TrialPoint
from sftmix_ray.config.space import SearchSpace
from sftmix_ray.pareto import hypervolume_of
from sftmix_ray.search.proposals import _hvi, describe, propose, random_points
from sftmix_ray.search.sampling import DefineByRun
from sftmix_ray.search.searcher import make_sampler
from sftmix_ray.search.surrogate import PROPOSAL_ATTR, SurrogateSampler
from tests.constructed import SPACE, points, scores

OBJ = {"math": "max", "code": "max", "general": "max"}


def _surrogate(n=20):
    space = SearchSpace.model_validate(SPACE)
    records = [Record(p, scores(p)) for p in points(n)]
    return space, Surrogate(space, list(OBJ), records), records


def test_improvement_is_the_exact_hypervolume_gain():
    rng = np.random.default_rng(0)
    front, ref = rng.random((6, 3)), np.zeros(3)
    cands = rng.random((20, 3)) * 1.2
    base = hypervolume_of(front, [True] * 3, ref)
    expected = [hypervolume_of(np.vstack([front, c]), [True] * 3, ref) - base for c in cands]
    assert _hvi(cands, front, ref) == pytest.approx(expected, abs=1e-12)


def test_a_proposal_keeps_off_the_trials_already_run():
    """Near a trial already run (within the sampler's resolution) a candidate is weighed down,
    so the search spreads along the front instead of measuring one mixture again."""
    space, surrogate, records = _surrogate()
    measured = np.array([[r.values[o] for o in OBJ] for r in records])
    tried = [r.point for r in records]
    batch = propose(surrogate, space, OBJ, 4, measured=measured, seed=0, tried=tried)
    X = surrogate.encoder.matrix(tried)
    for p in batch:
        x = surrogate.encoder.matrix([p.point])[0]
        assert np.min(np.sqrt(((X - x) ** 2).sum(axis=1))) > 0.02


def test_random_points_lie_in_the_space():
    space = SearchSpace.model_validate(SPACE)
    for p in random_points(space, 50, np.random.default_rng(0)):
        point = TrialPoint.from_wire(p)
        assert not space.check_point(point)
        assert 100 <= point.amount <= 1000 and sum(point.ratio.values()) == pytest.approx(1)


def test_a_batch_is_distinct_explained_and_improves_the_front():
    space, surrogate, records = _surrogate()
    measured = np.array([[r.values[o] for o in OBJ] for r in records])
    batch = propose(surrogate, space, OBJ, 4, measured=measured, seed=0,
                    exclude={point_key(r.point) for r in records})
    assert len({point_key(p.point) for p in batch}) == 4
    for p in batch:
        assert p.why in ("exploitation", "exploration") and p.ehvi >= 0
        assert all(p.interval(o)[0] < p.mean[o] < p.interval(o)[1] for o in OBJ)
        assert p.why in describe(p, list(OBJ)) and "[" in describe(p, list(OBJ))
    # the proposals' true scores push the measured front (the landscape is smooth)
    truth = np.array([list(scores(p.point).values()) for p in batch])
    before = hypervolume_of(measured, [True] * 3, [0, 0, 0])
    assert hypervolume_of(np.vstack([measured, truth]), [True] * 3, [0, 0, 0]) > before


def test_a_constraint_weighs_proposals_by_the_chance_it_holds():
    space, surrogate, records = _surrogate()
    measured = np.array([[r.values[o] for o in OBJ] for r in records])
    batch = propose(surrogate, space, OBJ, 3, measured=measured, seed=0,
                    constraints={"general": 0.6})
    assert all(0 <= p.feasible <= 1 for p in batch)
    assert np.mean([p.mean["general"] for p in batch]) > 0.45
    impossible = propose(surrogate, space, OBJ, 2, measured=measured, seed=0,
                         constraints={"general": 5.0})
    assert all(p.feasible < 1e-3 for p in impossible)


def _study(sampler, space, trials, objective):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize"] * 3, sampler=sampler)
    define = DefineByRun(space)
    study.optimize(lambda t: objective(define(t)[POINT_KEY]), n_trials=trials)
    return study


def test_the_sampler_starts_at_random_then_proposes_and_the_study_records_why():
    space = SearchSpace.model_validate(SPACE)
    config = SearchConfig(space="-", algorithm="surrogate", objectives=OBJ, batch_size=2)
    study = _study(make_sampler(config, space), space, 7, lambda p: tuple(scores(p).values()))
    attrs = [t.user_attrs.get(PROPOSAL_ATTR) for t in study.trials]
    assert attrs[:3] == [None] * 3  # MIN_RECORDS random trials first
    assert all(a and a["why"] in ("exploitation", "exploration") for a in attrs[3:])
    for t in study.trials:  # the point the trial ran is the one the study keeps
        assert not space.check_point(TrialPoint.from_wire(t.user_attrs[POINT_KEY]))


def test_prior_records_inform_the_first_trial_and_failures_do_not_stop_it():
    space = SearchSpace.model_validate(SPACE)
    prior = [Record(p, scores(p, 0.5), 0.25) for p in points(15)]
    sampler = SurrogateSampler(space, OBJ, batch_size=1, prior=prior)
    calls = []

    def objective(point):
        calls.append(point)
        return (math.nan,) * 3 if len(calls) == 2 else tuple(scores(point).values())

    study = _study(sampler, space, 4, objective)
    assert study.trials[0].user_attrs.get(PROPOSAL_ATTR) is not None
    assert [t.state.name for t in study.trials].count("FAIL") == 1
    assert all(t.user_attrs.get(PROPOSAL_ATTR) for t in study.trials)


def test_hyperparameters_are_optimized_again_only_as_the_records_grow_by_a_quarter(monkeypatch):
    """Flat cost: past KEEP_FROM records (3 here, 128 in a sweep), most refits keep the last
    kernels; optimizations come at geometric steps."""
    from sftmix_ray.search import surrogate as sampler_module

    calls = []
    real = sampler_module.Surrogate

    def spy(*args, **kwargs):
        calls.append((len(args[2]), kwargs["keep"] is None))
        return real(*args, **kwargs)

    monkeypatch.setattr(sampler_module, "Surrogate", spy)
    monkeypatch.setattr(sampler_module, "KEEP_FROM", 3)
    space = SearchSpace.model_validate(SPACE)
    _study(SurrogateSampler(space, OBJ, batch_size=1, candidates=64), space, 10,
           lambda p: tuple(scores(p).values()))
    optimized = [n for n, optimize in calls if optimize]
    assert calls[0] == (3, True)  # the first fit has nothing to keep
    expected, last = [], 0  # the first refit whose records reach 1.25× the last optimized
    for n, _ in calls:
        if not expected or n >= 1.25 * last:
            expected.append(n)
            last = n
    assert optimized == expected and len(optimized) < len(calls)


def test_below_keep_from_every_refit_optimizes(monkeypatch):
    from sftmix_ray.search import surrogate as sampler_module

    calls = []
    real = sampler_module.Surrogate
    monkeypatch.setattr(sampler_module, "Surrogate",
                        lambda *a, **k: calls.append(k["keep"]) or real(*a, **k))
    space = SearchSpace.model_validate(SPACE)
    _study(SurrogateSampler(space, OBJ, batch_size=1, candidates=64), space, 6,
           lambda p: tuple(scores(p).values()))
    assert calls and all(keep is None for keep in calls)
