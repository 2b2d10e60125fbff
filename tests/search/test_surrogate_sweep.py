"""A real surrogate-search sweep (local Ray, Tune + OptunaSearch, Ray Train, MLflow SQLite, the
Optuna journal): proxy trials read from MLflow inform its first trial, and the study records each
proposal's prediction and reason beside the point the trial ran."""

import optuna
import pytest
from optuna.storages.journal import JournalFileBackend

from sftmix_ray.config import load_sweep
from sftmix_ray.config.point import POINT_KEY, TrialPoint
from sftmix_ray.search.surrogate import PROPOSAL_ATTR
from sftmix_ray.search.tuner import run_sweep
from sftmix_ray.storage import state_dir
from sftmix_ray.tracking.runs import load_runs
from tests.constructed import log_sweep, points

pytestmark = pytest.mark.integration  # real Ray sweeps: the slow tier


def test_a_surrogate_sweep_starts_from_its_proxy_and_the_study_says_why(write_sweep, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    log_sweep(uri, "proxy", [{**p, "amount": 60} for p in points(8)], level=0.5)
    sweep, space = load_sweep(write_sweep(search={
        "space": str(tmp_path / "space.yaml"), "num_samples": 2, "seed": 0,
        "algorithm": "surrogate", "proxies": [{"experiment": "proxy", "fidelity": 0.25}]}))
    outcome = run_sweep(sweep, space)
    _, runs = load_runs(uri, sweep=outcome.parent_run_id)
    assert [r.status for r in runs] == ["FINISHED", "FINISHED"]
    journal = state_dir(sweep.storage, sweep.cache_dir, sweep.name) / "optuna.journal"
    study = optuna.load_study(study_name=sweep.name, storage=optuna.storages.JournalStorage(
        JournalFileBackend(str(journal))))
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 2
    for t in trials:  # the proxy's 8 trials are enough to propose from the first trial on
        why = t.user_attrs[PROPOSAL_ATTR]
        assert why["why"] in ("exploitation", "exploration")
        assert set(why["mean"]) == set(why["std"]) == {"math", "code", "general"}
        assert not space.check_point(TrialPoint.from_wire(t.user_attrs[POINT_KEY]))
    ran = sorted(r.params["strategy"] for r in runs)
    assert ran == sorted(t.user_attrs[POINT_KEY]["strategy"] for t in trials)
