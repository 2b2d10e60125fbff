"""A lab sweep against the services a team runs, all real and on loopback: the Optuna study in
PostgreSQL, MLflow on a tracking server whose backend store is PostgreSQL and whose artifacts go
to S3 (moto's server). Two trials run at once. Mid-sweep the tracking server is stopped for 30 s
and PostgreSQL is restarted; another sweep's driver is killed (kill -9) during a tracking outage
and resumed. Each time: every trial tracked exactly once with all its records, each run in its
right state, the study consistent, nothing duplicated, no password in MLflow or the output."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml

from tests.conftest import PG_PASSWORD
from tests.services import BIN, free_port, wait_until

pytestmark = pytest.mark.integration  # real Ray sweeps: the slow tier

OUTAGE_S = 30
QUEUE_WARNING = "does not answer"  # the driver's warning when a write is queued
RECOVERED = "answers again"
STUDY_WARNING = "the Optuna study's database does not answer"


class Driver:
    """`sftmix run|resume` in its own session, its output in a file the test reads as it goes."""

    def __init__(self, log: Path, *args: str, env: dict | None = None):
        self.log = log
        self.proc = subprocess.Popen([sys.executable, "-m", "sftmix_ray.cli", *args],
                                     stdout=log.open("ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True, env={**os.environ, **(env or {})})

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        # a driver that died (Ray timing out at start on a loaded machine, say) fails the wait
        # at once with its output, instead of the wait running out its 600 s
        assert self.proc.poll() is None, self.output()[-3000:]
        return True

    def says(self, text: str) -> bool:
        assert self.proc.poll() is None or text in self.output(), self.output()[-3000:]
        return text in self.output()

    def finish(self, timeout: float = 900) -> str:
        self.proc.wait(timeout=timeout)
        assert self.proc.returncode == 0, self.output()[-4000:]
        return self.output()


def _sweep(write_sweep, services, name: str, trials: int, concurrent: int) -> Path:
    path = write_sweep()
    data = yaml.safe_load(path.read_text())
    data["name"] = name
    # the password in the URL here, to check it never reaches MLflow or the output (a team
    # would rather give it in PGPASSWORD: see the README)
    data["search"].update(num_samples=trials, max_concurrent=concurrent, algorithm="tpe",
                          study_storage=services.pg.url("optuna", with_password=True))
    # half a CPU per Train worker: two trials fit on a 2-core machine at once
    data["train"]["cpus_per_worker"] = 0.5
    data["tracking"] = {"uri": services.mlflow.uri}
    path = path.with_name(f"{name}.yaml")
    path.write_text(yaml.safe_dump(data))
    return path


def _children(uri: str, name: str) -> list:
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name(f"sftmix-{name}")
    if exp is None:
        return []
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    return [r for r in runs if r.data.tags.get("sftmix.kind") == "trial"]


def _check_tracked(services, name: str, trials: int) -> list:
    """Every trial once, FINISHED, with its params, metrics, tags and artifacts (in S3)."""
    client = mlflow.MlflowClient(services.mlflow.uri)
    children = _children(services.mlflow.uri, name)
    assert len(children) == trials, [c.info.run_name for c in children]
    assert len({c.data.tags["sftmix.trial_id"] for c in children}) == trials
    keys = services.s3.keys("mlflow/")
    for run in children:
        assert run.info.status == "FINISHED", (run.info.run_name, run.info.status)
        assert {"strategy", "amount", "seed", "lr"} <= set(run.data.params)
        assert {"math", "code", "general", "train_loss", "param_delta_l2"} <= \
            set(run.data.metrics)
        assert {"sftmix.manifest_hash", "sftmix.model_path", "pareto_front",
                "general_scorer"} <= set(run.data.tags)
        for artifact in ("evaluation/eval_records.json", "evaluation/metrics.json",
                         "evaluation/train_summary.json", "manifest.json"):
            assert any(k.endswith(f"{run.info.run_id}/artifacts/{artifact}") for k in keys), \
                artifact
        history = client.get_metric_history(run.info.run_id, "math")
        assert len(history) == 1  # delivered once, not once per retry
    parent = client.get_run(children[0].data.tags["mlflow.parentRunId"])
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["trials_ok"] == trials
    return children


def _check_study(services, name: str, children: list) -> None:
    """The study agrees with MLflow: each tracked trial COMPLETE once, none left RUNNING; any
    other is an ask a killed driver made and never ran (FAIL), its point asked again."""
    study = optuna.load_study(study_name=name,
                              storage=services.pg.url("optuna", with_password=True))
    TS = optuna.trial.TrialState
    complete = study.get_trials(states=(TS.COMPLETE,))
    assert len(complete) == len(children)
    assert {t.state for t in study.trials} <= {TS.COMPLETE, TS.FAIL}
    assert sorted(t.number for t in study.trials) == list(range(len(study.trials)))
    ran = sorted((t.params["amount"], t.params["strategy"], round(t.values[0], 6))
                 for t in complete)
    tracked = sorted((int(r.data.params["amount"]), r.data.params["strategy"],
                      round(r.data.metrics["math"], 6)) for r in children)
    assert ran == tracked


def _check_no_password(services, name: str, children: list, output: str) -> None:
    client = mlflow.MlflowClient(services.mlflow.uri)
    parent_id = children[0].data.tags["mlflow.parentRunId"]
    for run in [client.get_run(parent_id), *children]:
        text = json.dumps([run.data.params, run.data.tags])
        assert PG_PASSWORD not in text
    mlflow.set_tracking_uri(services.mlflow.uri)
    logged = mlflow.artifacts.load_dict(f"runs:/{parent_id}/sweep.json")
    assert "[redacted]" in logged["search"]["study_storage"]
    assert PG_PASSWORD not in json.dumps(logged) and PG_PASSWORD not in output


def _running_child(services, name: str) -> bool:
    return any(r.info.status == "RUNNING" for r in _children(services.mlflow.uri, name))


def _overlap(children: list) -> bool:
    """From the trials' own clocks (Tune's `timestamp` and `time_total_s`, logged as metrics):
    a run's MLflow start and end are when the queue delivered them, which an outage delays."""
    spans = sorted((r.data.metrics["timestamp"] - r.data.metrics["time_total_s"],
                    r.data.metrics["timestamp"]) for r in children)
    return any(b[0] < a[1] for a, b in zip(spans, spans[1:]))


def test_a_sweep_on_team_services_loses_nothing_when_they_blip(team_services, write_sweep,
                                                               tmp_path):
    services, name = team_services, "team_blip"
    driver = Driver(tmp_path / "driver.log", "run",
                    str(_sweep(write_sweep, services, name, trials=4, concurrent=2)))
    t0, events = time.monotonic(), {}
    # 1. PostgreSQL restarts while trials run (a fast shutdown cuts every connection; the
    # tracking server's store goes with it) and stays down until the driver has met the outage
    # in a study call (a trial's end is told to Optuna).
    wait_until(lambda: driver.alive() and _running_child(services, name), 600, "a running trial")
    events["postgres down"] = time.monotonic() - t0
    services.pg.stop()
    try:
        wait_until(lambda: driver.says(STUDY_WARNING), 600, "a study call during the outage")
    finally:
        services.pg.start()
        events["postgres up"] = time.monotonic() - t0
    # 2. The tracking server goes down while the next trials run, for 30 s and at least until
    # the driver has had to queue a write.
    wait_until(lambda: driver.alive() and _running_child(services, name), 600, "a running trial")
    services.mlflow.stop()
    events["mlflow down"] = time.monotonic() - t0
    time.sleep(OUTAGE_S)
    wait_until(lambda: driver.says(QUEUE_WARNING), 600, "a queued MLflow write")
    services.mlflow.start()
    events["mlflow up"] = time.monotonic() - t0
    output = driver.finish()
    events["sweep done"] = time.monotonic() - t0
    print("timeline (s):", {k: round(v) for k, v in events.items()})
    assert RECOVERED in output  # the queued writes were delivered during the sweep

    children = _check_tracked(services, name, trials=4)
    assert _overlap(children)  # two trials ran at once
    _check_study(services, name, children)
    study = optuna.load_study(study_name=name, storage=services.pg.url("optuna", True))
    assert len(study.trials) == 4  # no driver died here: not even a failed ask
    _check_no_password(services, name, children, output)
    assert not (tmp_path / "runs" / name / "mlflow_queue.jsonl").exists()  # nothing left over
    _check_dashboard(services, name, trials=4)


def _check_dashboard(services, name: str, trials: int) -> None:
    """`optuna-dashboard <storage>` opens the sweep's study; its API lists the trials."""
    port = free_port()
    proc = subprocess.Popen([str(BIN / "optuna-dashboard"), services.pg.url("optuna"),
                             "--host", "127.0.0.1", "--port", str(port)],
                            env={**os.environ, "PGPASSWORD": PG_PASSWORD},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)

    def get(path: str):
        assert proc.poll() is None, "optuna-dashboard exited"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return json.loads(r.read())

    try:
        studies = wait_until(lambda: get("/api/studies")["study_summaries"], 120,
                             "optuna-dashboard")
        study = next(s for s in studies if s["study_name"] == name)
        detail = get(f"/api/studies/{study['study_id']}")
        assert len(detail["trials"]) == trials
        assert {t["state"] for t in detail["trials"]} == {"Complete"}
        assert len(detail["directions"]) == 3  # math, code, general
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_kill_9_during_a_tracking_outage_then_resume(team_services, write_sweep, tmp_path):
    """The driver dies while a finished trial's records wait in the queue: `sftmix resume`
    delivers them and completes the sweep, with nothing lost and nothing twice."""
    services, name = team_services, "team_kill"
    path = _sweep(write_sweep, services, name, trials=2, concurrent=1)
    journal = tmp_path / "runs" / name / "mlflow_queue.jsonl"
    driver = Driver(tmp_path / "driver.log", "run", str(path))
    wait_until(lambda: driver.alive() and _running_child(services, name), 600, "a running trial")
    services.mlflow.stop()
    try:
        # a trial ends during the outage: its metrics, artifacts and end are only queued
        wait_until(lambda: driver.says(QUEUE_WARNING) and journal.is_file()
                   and '"op": "end"' in journal.read_text(), 600, "a queued trial end")
        # ... and Tune has saved its state since (it does at most every second): a kill inside
        # that second would run the finished trial again on resume (in the same MLflow run)
        ended = time.time()
        wait_until(lambda: any(p.stat().st_mtime > ended for p in
                               journal.parent.glob("experiment_state-*.json")), 60,
                   "Tune's state saved")
        os.kill(driver.proc.pid, signal.SIGKILL)
        driver.proc.wait(timeout=60)
        queued = [json.loads(line) for line in journal.read_text().splitlines()]
        assert {op["op"] for op in queued} >= {"batch", "artifact", "end"}
    finally:
        services.mlflow.start()
    output = Driver(tmp_path / "resume.log", "resume", str(path)).finish()
    children = _check_tracked(services, name, trials=2)
    _check_study(services, name, children)
    assert not journal.exists()
    assert PG_PASSWORD not in output
