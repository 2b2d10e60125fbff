"""The study's RDB storage waits out a database restart (real PostgreSQL, stopped and started
again) instead of failing the sweep: the call that met the outage is retried, with a warning,
and lands exactly once."""

import threading
import time
from types import SimpleNamespace

import optuna
import pytest

from sftmix_ray.search.study import DurableStorage, study_storage

pytestmark = pytest.mark.integration  # starts a real PostgreSQL server


def test_a_study_call_during_a_database_restart_lands_once(team_services, tmp_path, capfd):
    pg = team_services.pg
    storage = study_storage(SimpleNamespace(study_storage=pg.url("optuna", with_password=True)),
                            tmp_path)
    assert isinstance(storage, DurableStorage)
    study = optuna.create_study(study_name="durable", storage=storage,
                                directions=["maximize", "maximize"])
    study.tell(study.ask(), [0.1, 0.2])
    asked = []
    pg.stop()
    try:
        caller = threading.Thread(target=lambda: asked.append(study.ask()))
        caller.start()
        deadline = time.monotonic() + 120
        while "the Optuna study's database does not answer" not in capfd.readouterr().err:
            assert time.monotonic() < deadline, "the call never met the outage"
            time.sleep(0.5)
    finally:
        pg.start()
    caller.join(timeout=180)
    assert asked and not caller.is_alive()
    study.tell(asked[0], [0.3, 0.4])
    trials = optuna.load_study(study_name="durable", storage=pg.url("optuna", True)).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert [t.number for t in trials] == [0, 1]


def test_a_bad_call_is_not_retried(team_services, tmp_path):
    storage = study_storage(SimpleNamespace(
        study_storage=team_services.pg.url("optuna", with_password=True)), tmp_path)
    started = time.monotonic()
    with pytest.raises(KeyError):  # no such study: an answer, not an outage
        storage.get_study_id_from_name("no-such-study")
    assert time.monotonic() - started < 10
