"""Kill the driver (SIGKILL) in the middle of a sweep, resume it, and count: every trial in
MLflow exactly once and finished, and the Optuna study agreeing with MLflow on what ran."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import optuna
import pytest
import yaml
from optuna.storages.journal import JournalFileBackend

pytestmark = pytest.mark.integration  # real Ray sweeps: the slow tier

TRIALS = 3


def _finished_children(db) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as con:
            return con.execute("select count(*) from runs r join tags t on r.run_uuid = "
                               "t.run_uuid where t.key = 'mlflow.parentRunId' and "
                               "r.status = 'FINISHED'").fetchone()[0]
    except sqlite3.OperationalError:  # tables not made yet
        return 0


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "sftmix_ray.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, **kw)


def test_kill_9_mid_sweep_then_resume_loses_and_repeats_nothing(write_sweep, tmp_path):
    path = write_sweep()
    data = yaml.safe_load(path.read_text())
    data["search"].update(num_samples=TRIALS, algorithm="tpe")
    path.write_text(yaml.safe_dump(data))
    db = tmp_path / "mlflow.db"

    driver = _cli("run", str(path))
    deadline = time.monotonic() + 300
    while _finished_children(db) < 1:
        assert driver.poll() is None, driver.stdout.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no trial finished in time"
        time.sleep(0.5)
    os.kill(driver.pid, signal.SIGKILL)  # the driver only: its Ray reaper takes the cluster down
    driver.wait(timeout=30)
    done_before = _finished_children(db)
    assert done_before < TRIALS

    resumed = _cli("resume", str(path))
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out.decode()[-3000:]

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{db}")
    runs = mlflow.search_runs(search_all_experiments=True)
    parent = runs[runs["tags.sftmix.kind"] == "sweep"]
    children = runs[runs["tags.sftmix.kind"] == "trial"]
    assert len(parent) == 1 and parent.iloc[0]["status"] == "FINISHED"
    assert len(children) == TRIALS and children["tags.sftmix.trial_id"].is_unique
    assert (children["status"] == "FINISHED").all()
    assert (children["tags.mlflow.parentRunId"] == parent.iloc[0]["run_id"]).all()

    journal = tmp_path / "runs" / "t" / "optuna.journal"
    study = optuna.load_study(study_name="t", storage=optuna.storages.JournalStorage(
        JournalFileBackend(str(journal))))
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    running = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    assert len(complete) == TRIALS and not running
    ran_mlflow = sorted((int(a), s) for a, s in zip(children["params.amount"],
                                                    children["params.strategy"]))
    ran_optuna = sorted((t.params["amount"], t.params["strategy"]) for t in complete)
    assert ran_mlflow == ran_optuna
    assert sorted(round(t.values[0], 6) for t in complete) == \
        sorted(round(v, 6) for v in children["metrics.math"])
