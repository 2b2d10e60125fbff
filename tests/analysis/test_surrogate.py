"""The surrogate of the abilities: records read back from runs, features, a GP per ability that
learns a known landscape (its cross-validated error well under the data's spread), noise from
seed repeats, proxies as a prior mean, and rank agreement."""

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest

from sftmix_ray.analysis.records import Record, point_from_params, point_key, records_from_runs
from sftmix_ray.analysis.surrogate import Encoder, Surrogate, seed_noise
from sftmix_ray.analysis.surrogate_quality import cross_validate, rank_agreement, verdict
from sftmix_ray.config.point import TrialPoint
from sftmix_ray.config.space import SearchSpace
from tests.constructed import SPACE, points, scores

OBJ = ["math", "code", "general"]


def _records(n, seed=0, level=1.0, fidelity=1.0):
    return [Record(p, scores(p, level), fidelity) for p in points(n, seed)]


def test_params_round_trip_to_the_full_point_searched_hyperparameters_included():
    point = TrialPoint(ratio={"math": 0.5, "code": 0.5}, amount=300, strategy="sequential",
                       order=["code", "math"], train={"lr": 0.001, "epochs": 2}, seed=3)
    params = {k: str(v) for k, v in point.flat_params().items()}  # MLflow keeps strings
    back = TrialPoint.from_wire(point_from_params(params))
    assert back.order == ["code", "math"] and back.train == {"lr": 0.001, "epochs": 2}
    assert back.amount == 300 and back.ratio == {"math": 0.5, "code": 0.5}
    assert point_key(back.to_wire()) == point_key(point.to_wire())


def test_only_finished_trials_with_every_objective_become_records():
    def run(status="FINISHED", strategy="multi_task", **metrics):
        params = {"strategy": strategy, "ratio.math": "1.0", "amount": "100"} if strategy \
            else {}
        return SimpleNamespace(run_id="r", status=status, params=params, metrics=metrics)

    full = {"math": 0.1, "code": 0.2, "general": 0.3, "math_ci_low": 0.0, "math_ci_high": 0.2}
    runs = [run(**full), run("FAILED", **full), run(strategy=None, **full),
            run(math=0.1, code=0.2), run(**{**full, "general": math.nan})]
    records = records_from_runs(runs, OBJ, fidelity=0.5)
    assert len(records) == 1 and records[0].fidelity == 0.5
    assert records[0].intervals == {"math": pytest.approx(0.1)}


def test_features_place_a_point_in_the_unit_box():
    space = SearchSpace.model_validate(SPACE)
    enc = Encoder(space)
    x = enc({"ratio": {"math": 0.2, "code": 0.3, "general": 0.5}, "amount": 1000,
             "strategy": "dmt", "k": 0.25})
    names = enc.names()
    assert dict(zip(names, x)) == pytest.approx({
        "share.math": 0.2, "share.code": 0.3, "log_amount": 1.0, "variant.multi_task": 0.0,
        "variant.dmt": 1.0, "log_k": 1.0})


def test_the_surrogate_learns_a_known_landscape_better_than_its_spread():
    space = SearchSpace.model_validate(SPACE)
    quality = cross_validate(space, OBJ, _records(40), folds=5)
    for o in OBJ:
        q = quality[o]
        assert q["cv_rmse"] < 0.5 * q["data_std"], (o, q)
        assert q["coverage95"] >= 0.7
        assert verdict(q).startswith("knows more than the mean")


def test_predictions_carry_intervals_that_widen_away_from_the_data():
    space = SearchSpace.model_validate(SPACE)
    near = [{"ratio": {"math": 0.6, "code": 0.2, "general": 0.2}, "amount": 500,
             "strategy": "multi_task"}]
    records = [Record(p, scores(p)) for p in near * 1] + _records(12)
    mean, std = Surrogate(space, OBJ, records).predict(near)
    assert mean.shape == std.shape == (1, 3) and np.all(std > 0)
    assert mean[0] == pytest.approx(list(scores(near[0]).values()), abs=0.05)


def test_the_search_sees_the_abilitys_uncertainty_a_trial_the_noise_beside_it():
    """Measured three times with noise, a point's ability is known better than what one more
    trial there would measure: the search's std leaves out the noise the GP learned, the
    observed one (cross-validation, a proposal's interval) keeps it."""
    space = SearchSpace.model_validate(SPACE)
    rng = np.random.default_rng(0)
    records = [Record(p, {o: v + rng.normal(0, 0.05) for o, v in scores(p).items()})
               for p in points(20) for _ in range(3)]
    surrogate = Surrogate(space, OBJ, records)
    _, ability = surrogate.predict(points(20))
    _, trial = surrogate.predict(points(20), observed=True)
    assert np.all(ability < trial)
    for j, o in enumerate(OBJ):
        noise = surrogate.models[o].residual.noise_var_
        assert 0.02 ** 2 < noise < 0.1 ** 2  # it learned the 0.05 it was given, roughly
        assert np.allclose(trial[:, j] ** 2, ability[:, j] ** 2 + noise, atol=1e-9)


def test_seed_noise_is_the_pooled_spread_of_repeats():
    p = points(2)
    records = [Record(p[0], {"math": v}) for v in (0.1, 0.3)] + \
        [Record(p[1], {"math": v}) for v in (0.5, 0.5)] + [Record(points(3)[2], {"math": 0.9})]
    assert seed_noise(records, ["math"])["math"] == pytest.approx(math.sqrt(0.02 / 2))
    assert seed_noise(records[-1:], ["math"])["math"] is None


def test_a_proxy_alone_informs_the_target_prediction():
    space = SearchSpace.model_validate(SPACE)
    proxy = _records(30, seed=1, level=0.5, fidelity=0.25)
    fresh = points(20, seed=7)
    mean, _ = Surrogate(space, OBJ, proxy).predict(fresh)
    truth = np.array([[scores(p)[o] for o in OBJ] for p in fresh])
    for j in range(3):  # before any target trial the ranking is the proxy's, and it transfers
        assert np.corrcoef(mean[:, j], truth[:, j])[0, 1] > 0.8


def test_a_proxy_at_one_amount_keeps_its_spread_at_the_targets_amount():
    """A proxy sweep at one small amount, asked about the target's larger amount: the proxy GP
    has never seen the amount move, so it is asked at the proxies' own amount; before, it
    answered as if far from every proxy trial, its spread shrunk toward its mean."""
    space = SearchSpace.model_validate(SPACE)
    proxy = [Record({**p, "amount": 100}, scores({**p, "amount": 100}), 0.25)
             for p in points(30, seed=1)]
    fresh = points(20, seed=7)
    at_proxy, _ = Surrogate(space, OBJ, proxy).predict([{**p, "amount": 100} for p in fresh])
    at_target, _ = Surrogate(space, OBJ, proxy).predict([{**p, "amount": 1000} for p in fresh])
    assert np.allclose(at_target, at_proxy)  # before any target trial: the proxy's own scores
    for j in range(3):
        assert at_target[:, j].std() > 0.8 * at_proxy[:, j].std() > 0


# Measured on the lab (2026-11-24, before its base model): 1,000 samples at the 10 ratios of the
# lattice in thirds × {multi-task, DMT k=1/16}; math share, code share, strategy, scores.
LAB_PROXY = [
    (1.0, 0.0, 'multi_task', 0.1562, 0.0, 0.0291),
    (1.0, 0.0, 'dmt', 0.0625, 0.0, 0.0204),
    (0.0, 1.0, 'multi_task', 0.0, 0.0, 0.0031),
    (0.0, 1.0, 'dmt', 0.0, 0.0, 0.0),
    (0.0, 0.0, 'multi_task', 0.0, 0.0, 0.4358),
    (0.0, 0.0, 'dmt', 0.0, 0.0, 0.4358),
    (0.6667, 0.3333, 'multi_task', 0.1562, 0.0, 0.0596),
    (0.6667, 0.3333, 'dmt', 0.0312, 0.0312, 0.0584),
    (0.3333, 0.6667, 'multi_task', 0.0, 0.0, 0.0198),
    (0.3333, 0.6667, 'dmt', 0.0156, 0.0, 0.0122),
    (0.6667, 0.0, 'multi_task', 0.0469, 0.0, 0.237),
    (0.6667, 0.0, 'dmt', 0.0, 0.0, 0.3005),
    (0.3333, 0.0, 'multi_task', 0.0156, 0.0, 0.23),
    (0.3333, 0.0, 'dmt', 0.0, 0.0, 0.1467),
    (0.0, 0.6667, 'multi_task', 0.0, 0.0, 0.0974),
    (0.0, 0.6667, 'dmt', 0.0, 0.0, 0.0885),
    (0.0, 0.3333, 'multi_task', 0.0, 0.0, 0.2056),
    (0.0, 0.3333, 'dmt', 0.0, 0.0, 0.115),
    (0.3333, 0.3333, 'multi_task', 0.0, 0.0, 0.0796),
    (0.3333, 0.3333, 'dmt', 0.0, 0.0, 0.2156),
]


def test_between_two_measured_mixtures_the_fit_predicts_between_their_scores():
    """Fitted to the lab's 20 measured trials, the GP once chose length scales of 0.01 on the
    shares: a lookup table of its trials, predicting the mean halfway between two of them.
    Halfway between lattice neighbours whose scores differ, it predicts between their scores
    (±0.05) for at least 9 in 10 pairs (0.83 with length scales down to 0.01)."""
    space = SearchSpace.model_validate({
        "domains": OBJ, "specialized": ["math", "code"], "ratio": {"kind": "simplex"},
        "amount": {"choices": [1000]}, "strategies": {"multi_task": {}, "dmt": {"k": [0.0625]}}})

    def point(m, c, strategy):
        return {"ratio": {"math": m, "code": c, "general": max(0.0, 1 - m - c)}, "amount": 1000,
                "strategy": strategy, **({"k": 0.0625} if strategy == "dmt" else {})}

    surrogate = Surrogate(space, OBJ, [Record(point(m, c, s), dict(zip(OBJ, v)))
                                       for m, c, s, *v in LAB_PROXY])
    between = pairs = 0
    for a, b in itertools.combinations(LAB_PROXY, 2):
        shares = [(a[0], a[1], 1 - a[0] - a[1]), (b[0], b[1], 1 - b[0] - b[1])]
        if a[2] != b[2] or abs(max(abs(x - y) for x, y in zip(*shares)) - 1 / 3) > 1e-3:
            continue  # neighbours: one step of the lattice apart, same strategy
        mean, _ = surrogate.predict([point((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, a[2])])
        for j in range(3):
            lo, hi = sorted((a[3 + j], b[3 + j]))
            if hi - lo >= 0.05:
                pairs += 1
                between += lo - 0.05 <= mean[0, j] <= hi + 0.05
    assert pairs >= 25 and between >= 0.9 * pairs, (between, pairs)


def test_target_trials_correct_a_proxy_with_a_shift():
    space = SearchSpace.model_validate(SPACE)
    proxy = _records(30, seed=1, level=0.5, fidelity=0.25)
    target = _records(15, seed=2)
    fresh = points(20, seed=7)
    truth = np.array([[scores(p)[o] for o in OBJ] for p in fresh])
    alone, _ = Surrogate(space, OBJ, proxy).predict(fresh)
    both, _ = Surrogate(space, OBJ, proxy + target).predict(fresh)
    assert np.abs(both - truth).mean() < 0.5 * np.abs(alone - truth).mean()


def test_rank_agreement_pairs_mixtures_across_amounts():
    p = points(6)
    proxy = [Record({**x, "amount": 100}, scores(x, 0.5), 0.25) for x in p]
    target = [Record(x, scores(x)) for x in p[:5]]
    pairs, rho = rank_agreement(proxy, target, OBJ)
    assert len(pairs) == 5 and rho["general"] == pytest.approx(1.0)
    _, few = rank_agreement(proxy, target[:2], OBJ)
    assert few == {o: None for o in OBJ}


def test_kept_hyperparameters_only_condition_on_new_trials():
    """The sampler's flat cost: a refit that keeps an earlier fit's kernels optimizes nothing
    (its kernels are those it was given) yet learns from the trials it was not fitted to."""
    space = SearchSpace.model_validate(SPACE)
    first = Surrogate(space, list(OBJ), _records(20))
    new = _records(20, seed=1)
    more = _records(20) + new
    kept = Surrogate(space, list(OBJ), more, keep=first.kernels)
    for o in OBJ:
        for role, kernel in kept.kernels[o].items():
            assert np.allclose(kernel.theta, first.kernels[o][role].theta)
    X = [r.point for r in new]
    truth = np.array([[r.values[o] for o in OBJ] for r in new])
    err_first = np.abs(first.predict(X)[0] - truth).mean()
    err_kept = np.abs(kept.predict(X)[0] - truth).mean()
    assert err_kept < err_first  # conditioned on the new trials, it predicts them better
    moved = Surrogate(space, list(OBJ), more)  # without `keep`, it optimizes them again
    assert any(not np.allclose(moved.kernels[o]["residual"].theta,
                               first.kernels[o]["residual"].theta) for o in OBJ)


def test_a_kernel_for_other_coordinates_is_not_kept():
    space = SearchSpace.model_validate(SPACE)
    first = Surrogate(space, list(OBJ), _records(20))
    wrong = {o: {"residual": first.kernels[o]["residual"].clone_with_theta(
        first.kernels[o]["residual"].theta)} for o in OBJ}
    for o in OBJ:  # a kernel with one length scale too many: a space of other coordinates
        k = wrong[o]["residual"]
        k.k1.k2.length_scale = np.append(np.atleast_1d(k.k1.k2.length_scale), 1.0)
    refit = Surrogate(space, list(OBJ), _records(20), keep=wrong)
    d = len(refit.encoder.names())
    for o in OBJ:
        assert len(np.atleast_1d(refit.kernels[o]["residual"].k1.k2.length_scale)) == d
