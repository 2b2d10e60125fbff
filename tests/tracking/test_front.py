"""The one writer of a sweep's answer in MLflow (`sftmix run` and `sftmix pareto` alike): tags
on every run, `pareto.json` in one schema and the counts on the parent run, on a real SQLite
store."""

import mlflow
import pytest

from sftmix_ray.analysis.front import analyze
from sftmix_ray.tracking.front import record_front, run_status
from sftmix_ray.tracking.runs import load_runs
from sftmix_ray.tracking.store import child_runs, experiment_id, resolve_uri

SCHEMA = {"objectives", "by", "reference", "hypervolume", "front", "within_noise", "runs",
          "missing"}


def _store(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("hand-made")
    parent = client.create_run(exp, run_name="sweep").info.run_id
    ids = {}
    for name, metrics in {"A": {"math": 1.0, "code": 0.2}, "B": {"math": 0.2, "code": 1.0},
                          "D": {"math": 0.5, "code": 0.1}, "F": {"math": 0.9}}.items():
        rid = client.create_run(exp, run_name=name,
                                tags={"mlflow.parentRunId": parent}).info.run_id
        for k, v in metrics.items():
            client.log_metric(rid, k, v)
        client.set_terminated(rid, "FINISHED")
        ids[name] = rid
    return uri, client, parent, ids


def test_pareto_command_tags_runs_and_logs_the_answer(tmp_path):
    import mlflow
    from typer.testing import CliRunner

    from sftmix_ray.cli import app

    uri, client, parent, ids = _store(tmp_path)
    out = CliRunner().invoke(app, ["pareto", "--sweep", parent, "--objectives", "math,code",
                                   "--reference", "0,0", "--tracking-uri", uri])
    assert out.exit_code == 0, out.output
    assert "front: 2 of 3; hypervolume 0.36" in out.output
    tags = {n: client.get_run(r).data.tags for n, r in ids.items()}
    assert [tags[n]["pareto_front"] for n in "ABDF"] == ["true", "true", "false", "false"]
    assert [tags[n]["pareto_rank"] for n in "ABDF"] == ["1", "1", "2", "none"]
    mlflow.set_tracking_uri(uri)
    answer = mlflow.artifacts.load_dict(f"runs:/{parent}/pareto.json")
    assert answer["front"] == [ids["A"], ids["B"]] and answer["missing"] == [ids["F"]]
    # the same runs as an experiment (the parent has no metrics, so it is not a trial)
    exp = CliRunner().invoke(app, ["pareto", "--experiment", "hand-made", "--objectives",
                                   "math,code", "--tracking-uri", uri, "--no-tag"])
    assert exp.exit_code == 0 and "front: 2 of 3" in exp.output
    bad = CliRunner().invoke(app, ["pareto", "--sweep", "nope", "--tracking-uri", uri])
    assert bad.exit_code == 2 and "--sweep: no run 'nope'" in bad.output


def test_record_front_writes_one_schema_and_the_counts(tmp_path):
    uri, client, parent, ids = _store(tmp_path)
    pruned = client.create_run(client.get_run(parent).info.experiment_id, run_name="P",
                               tags={"mlflow.parentRunId": parent, "sftmix.pruned": "after 1",
                                     "sftmix.trial_id": "p1"}).info.run_id
    client.set_terminated(pruned, "KILLED")
    _, runs = load_runs(uri, sweep=parent)
    analysis = analyze(runs, {"math": "max", "code": "max"}, [0.0, 0.0])
    record_front(uri, analysis, runs, parent)
    mlflow.set_tracking_uri(uri)
    answer = mlflow.artifacts.load_dict(f"runs:/{parent}/pareto.json")
    assert set(answer) == SCHEMA
    assert answer["front"] == [ids["A"], ids["B"]]
    assert sorted(answer["missing"]) == sorted([ids["F"], pruned])
    by_name = {r["name"]: r for r in answer["runs"]}
    assert by_name["A"]["rank"] == 1 and by_name["D"]["rank"] == 2 and by_name["D"]["code"] == 0.1
    metrics = client.get_run(parent).data.metrics
    assert (metrics["trials_ok"], metrics["trials_pruned"], metrics["trials_failed"]) == (4, 1, 0)
    assert metrics["pareto_size"] == 2 and metrics["hypervolume"] == pytest.approx(0.36)
    assert client.get_run(pruned).data.tags["pareto_rank"] == "none"
    assert [run_status(r) for r in runs if r.run_id == pruned] == ["pruned"]


def test_an_experiment_front_tags_runs_but_writes_no_answer(tmp_path):
    uri, client, parent, ids = _store(tmp_path)
    _, runs = load_runs(uri, experiment="hand-made")
    record_front(uri, analyze(runs, {"math": "max"}), runs, None)
    assert client.get_run(ids["A"]).data.tags["pareto_front"] == "true"
    assert "pareto_size" not in client.get_run(parent).data.metrics


def test_the_store_resolves_the_uri_and_finds_or_creates_the_experiment(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///env.db")
    assert resolve_uri() == "sqlite:///env.db" and resolve_uri("http://h:5000") == "http://h:5000"
    uri, client, parent, ids = _store(tmp_path)
    exp = experiment_id(client, "hand-made")
    assert exp == experiment_id(client, "hand-made")  # found, not created twice
    assert experiment_id(client, "new-one") != exp
    assert {r.info.run_id for r in child_runs(client, exp, parent)} == set(ids.values())
