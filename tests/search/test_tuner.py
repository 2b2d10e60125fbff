"""Real end-to-end sweeps: local Ray, Ray Tune + OptunaSearch, Ray Train (CPU, gloo), MLflow SQLite.
One Ray session serves every test in this process."""

import math
import re
from pathlib import Path

import mlflow
import pytest

from sftmix_ray.config import load_sweep
from sftmix_ray.search.tuner import run_sweep

pytestmark = pytest.mark.integration  # real Ray sweeps: the slow tier


def _runs(uri, parent_id):
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(search_all_experiments=True,
                              filter_string=f"tags.mlflow.parentRunId = '{parent_id}'")


def test_two_trial_sweep_trains_scores_and_tracks(write_sweep):
    sweep, space = load_sweep(write_sweep())
    outcome = run_sweep(sweep, space)
    children = _runs(outcome.tracking_uri, outcome.parent_run_id)
    assert len(children) == 2
    assert (children["status"] == "FINISHED").all()
    # what the config checks accept as objectives is what every trial really reports
    from sftmix_ray.config.checks import trial_metrics

    reported = {c.removeprefix("metrics.") for c in children.columns
                if c.startswith("metrics.") and children[c].notna().all()}
    assert trial_metrics(sweep) <= reported, trial_metrics(sweep) - reported
    for _, run in children.iterrows():
        for ability in ("math", "code", "general"):
            value = run[f"metrics.{ability}"]
            assert math.isfinite(value) and 0.0 <= value <= 1.0
        assert math.isfinite(run["metrics.train_loss"])
        assert run["metrics.param_delta_l2"] > 0  # training changed the weights
        assert run["params.strategy"] in ("multi_task", "dmt")
        assert run["tags.sftmix.manifest_hash"]
        assert run["tags.general_scorer"] == "offline-reference-f1"  # never called MT-Bench
        model_dir = run["tags.sftmix.model_path"]  # the final weights, loadable as a model
        assert (Path(model_dir) / "config.json").is_file()
        if run["params.strategy"] == "dmt":  # two stages, each with its own report
            assert run["metrics.stage1_tokens"] > 0 and run["metrics.stage0_tokens"] > 0
        evaluation = mlflow.artifacts.list_artifacts(run_id=run["run_id"],
                                                     artifact_path="evaluation")
        assert {Path(a.path).name for a in evaluation} == {"eval_records.json", "metrics.json",
                                                             "train_summary.json"}
    parent = mlflow.get_run(outcome.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["trials_ok"] == 2
    # the trials fine-tuned the lab base model the driver built into the sweep's cache
    base_key = parent.data.tags["sftmix.base_model"]
    assert list(Path(sweep.storage).glob(f"**/lab-base-{base_key}/model.safetensors"))
    assert 1 <= parent.data.metrics["pareto_size"] <= 2
    assert {r["trial_id"] for r in outcome.front} <= {r["trial_id"] for r in outcome.rows}
    # the answer `sftmix pareto` would write: one schema, trial ids included
    answer = mlflow.artifacts.load_dict(f"runs:/{outcome.parent_run_id}/pareto.json")
    assert set(answer) == {"objectives", "by", "reference", "hypervolume", "front",
                           "within_noise", "runs", "missing"}
    assert {r["trial_id"] for r in answer["runs"]} == {r["trial_id"] for r in outcome.rows}
    assert sorted(answer["front"]) == sorted(r["run_id"] for r in outcome.front)


def test_a_lab_sweep_scores_the_same_run_to_run(write_sweep, tmp_path):
    """Everything from scratch twice (tokenizer, base model, data, trials, in separate storage):
    the same point gets the same scores and the same base model."""
    space = {"domains": ["math", "code", "general"], "ratio": {"kind": "fixed",
             "fixed": {"math": 2, "code": 1, "general": 1}},
             "amount": {"choices": [80]}, "strategies": {"multi_task": {}}}
    path = write_sweep(space=space)
    outcomes = []
    for run in ("first", "second"):
        sweep, sp = load_sweep(path, {"storage": str(tmp_path / run), "name": f"again-{run}",
                                      "search.algorithm": "grid", "search.num_samples": 1})
        outcomes.append(run_sweep(sweep, sp))
    first, second = (_runs(o.tracking_uri, o.parent_run_id).iloc[0] for o in outcomes)
    for column in ("metrics.math", "metrics.code", "metrics.general", "metrics.train_loss",
                   "tags.sftmix.manifest_hash"):
        assert first[column] == second[column], column
    bases = {mlflow.get_run(o.parent_run_id).data.tags["sftmix.base_model"] for o in outcomes}
    assert len(bases) == 1 and "none" not in bases


def test_failing_trial_is_recorded_and_the_sweep_goes_on(write_sweep):
    # A grid of two fraction mixtures: parts of each domain fit; 1/512 of a 200-sample pool
    # rounds to no sample, which the trial must refuse rather than train on nothing.
    space = {"domains": ["math", "code", "general"],
             "fractions": {"grid": [{"math": 0.5, "code": 0.25, "general": 0.25},
                                    {"math": 1 / 512}]},
             "strategies": {"multi_task": {}}}
    path = write_sweep(space=space)
    sweep, sp = load_sweep(path)
    sweep = sweep.model_copy(update={"search": sweep.search.model_copy(
        update={"algorithm": "grid", "num_samples": 1})})
    outcome = run_sweep(sweep, sp)
    by_status = {r["status"]: r for r in outcome.rows}
    assert set(by_status) == {"ok", "failed"}
    assert "rounds to 0" in by_status["failed"]["error"]
    children = _runs(outcome.tracking_uri, outcome.parent_run_id)
    assert sorted(children["status"]) == ["FAILED", "FINISHED"]
    failed = children[children["status"] == "FAILED"].iloc[0]
    assert failed["tags.sftmix.error"].startswith("sftmix_ray.data.mixture.MixtureError: domain "
                                                  "'math': fraction 0.00195312 of 200 samples "
                                                  "rounds to 0")
    trace = mlflow.artifacts.load_text(f"runs:/{failed['run_id']}/error.txt")
    assert "resolve_counts" in trace  # where it failed, not only what
    ok = children[children["status"] == "FINISHED"].iloc[0]
    assert ok["params.mixture"] == "fractions" and float(ok["params.fractions.math"]) == 0.5
    assert (ok["metrics.samples_math"], ok["metrics.samples_code"]) == (100, 50)
    manifest = mlflow.artifacts.load_dict(f"runs:/{ok['run_id']}/manifest.json")
    assert manifest["counts"] == {"math": 100, "code": 50, "general": 50}
    assert manifest["hash"] == ok["tags.sftmix.manifest_hash"]


def test_a_trial_whose_loss_turns_nan_is_recorded_failed(write_sweep, monkeypatch):
    # A secret in the driver's environment whose value the failure's message happens to quote:
    # the error tag and the traceback artifact carry [redacted] instead.
    monkeypatch.setenv("SFTMIX_CANARY_TOKEN", "became nan at")
    space = {"domains": ["math", "code", "general"], "ratio": {"kind": "fixed",
             "fixed": {"math": 1, "code": 1, "general": 1}},
             "amount": {"choices": [60]}, "strategies": {"multi_task": {}}}
    sweep, sp = load_sweep(write_sweep(space=space))
    sweep = sweep.model_copy(update={
        "search": sweep.search.model_copy(update={"algorithm": "grid", "num_samples": 1}),
        "train": sweep.train.model_copy(update={"lr": 1e30, "warmup_ratio": 0.0})})
    outcome = run_sweep(sweep, sp)
    assert [r["status"] for r in outcome.rows] == ["failed"] and outcome.front == []
    run = _runs(outcome.tracking_uri, outcome.parent_run_id).iloc[0]
    assert run["status"] == "FAILED"
    assert "FloatingPointError: loss [redacted] stage 'multi_task'" in run["tags.sftmix.error"]
    trace = mlflow.artifacts.load_text(f"runs:/{run['run_id']}/error.txt")
    assert "became nan at" not in trace and "[redacted]" in trace


def test_a_two_worker_ddp_trial_trains_shards_generation_and_reports(write_sweep):
    """Two gloo workers: DDP training, rank 0 deciding the prefix cache for both, generation
    sharded over both ranks and gathered, scoring on rank 0."""
    space = {"domains": ["math", "code", "general"], "specialized": ["math", "code"],
             "ratio": {"kind": "fixed", "fixed": {"math": 1, "code": 1, "general": 1}},
             "amount": {"choices": [90]}, "strategies": {"dmt": {"k": [0.5]}}}
    sweep, sp = load_sweep(write_sweep(space=space))
    sweep = sweep.model_copy(update={
        "search": sweep.search.model_copy(update={"algorithm": "grid", "num_samples": 1}),
        "train": sweep.train.model_copy(update={"workers": 2, "cpus_per_worker": 0.5,
                                                "threads_per_worker": 1})})
    outcome = run_sweep(sweep, sp)
    assert [r["status"] for r in outcome.rows] == ["ok"], outcome.rows
    run = _runs(outcome.tracking_uri, outcome.parent_run_id).iloc[0]
    assert run["metrics.stage0_steps"] >= 1 and run["metrics.stage1_steps"] >= 1
    assert run["metrics.param_delta_l2"] > 0
    records = mlflow.artifacts.load_dict(f"runs:/{run['run_id']}/evaluation/eval_records.json")
    assert len(records["math"]) == 4 and all("output" in r for r in records["math"])


def test_seeds_repeat_a_point_and_the_report_shows_the_spread(write_sweep, tmp_path):
    from sftmix_ray.report.build import build_report

    space = {"domains": ["math", "code", "general"], "ratio": {"kind": "fixed",
             "fixed": {"math": 1, "code": 1, "general": 1}},
             "amount": {"choices": [60]}, "strategies": {"multi_task": {}}}
    sweep, sp = load_sweep(write_sweep(space=space))
    sweep = sweep.model_copy(update={"search": sweep.search.model_copy(
        update={"algorithm": "grid", "num_samples": 1, "seeds": [0, 1]})})
    outcome = run_sweep(sweep, sp)
    children = _runs(outcome.tracking_uri, outcome.parent_run_id)
    assert sorted(children["params.seed"]) == ["0", "1"]
    assert children["tags.sftmix.manifest_hash"].nunique() == 2  # another seed, other samples
    result = build_report(outcome.tracking_uri, tmp_path / "report",
                          sweep=outcome.parent_run_id,
                          objectives={"math": "max", "code": "max", "general": "max"})
    assert result["rows"] == 1  # one point, two seeds
    md = (tmp_path / "report" / "report.md").read_text()
    assert "1 of 1 points ran with several seeds" in md and " ± " in md


def test_sequential_and_mixed_sequential_trials_run(write_sweep):
    space = {"domains": ["math", "code", "general"], "specialized": ["math", "code"],
             "fractions": {"grid": [{"math": 0.25, "code": 0.25, "general": 0.25}]},
             "strategies": {"sequential": {"order": ["code", "math", "general"]},
                            "mixed_sequential": {}}}
    sweep, sp = load_sweep(write_sweep(space=space))
    sweep = sweep.model_copy(update={"search": sweep.search.model_copy(
        update={"algorithm": "grid", "num_samples": 1})})
    outcome = run_sweep(sweep, sp)
    assert sorted(r["status"] for r in outcome.rows) == ["ok", "ok"]
    runs = _runs(outcome.tracking_uri, outcome.parent_run_id).set_index("params.strategy")
    assert runs.loc["sequential", "metrics.stage2_tokens"] > 0  # code, then math, then general
    assert runs.loc["mixed_sequential", "metrics.stage1_tokens"] > 0
    manifest = mlflow.artifacts.load_dict(
        f"runs:/{runs.loc['sequential', 'run_id']}/manifest.json")
    assert [list(s["domains"]) for s in manifest["stages"]] == [["code"], ["math"], ["general"]]


@pytest.mark.prunes  # last in the session: see conftest.pytest_collection_modifyitems
def test_pruning_stops_a_weak_trial_and_optuna_hears_pruned(write_sweep):
    """Single-objective sweep with ASHA: the objective is evaluated after each epoch of the final
    stage. Warm-start points fix the order: a trial that learns, then one whose lr is too small to
    move the weights, which falls behind its peer at a rung and is stopped there."""
    import optuna

    space = {"domains": ["math", "code", "general"],
             "counts": {"grid": [{"general": 200}]}, "strategies": {"multi_task": {}},
             "train": {"lr": {"low": 1e-9, "high": 1e-2, "log": True}}}
    point = {"counts": {"general": 200}, "strategy": "multi_task"}
    search = {"space": None, "algorithm": "tpe", "num_samples": 2, "seed": 0,
              "objectives": {"general": "max"}, "prune": {"grace_period": 1},
              "warm_start": [{**point, "train": {"lr": 1e-2}}, {**point, "train": {"lr": 1e-9}}]}
    path = write_sweep(space=space)
    import yaml

    data = yaml.safe_load(path.read_text())
    data["search"] = {**search, "space": data["search"]["space"]}
    data["train"].update(epochs=3)
    # a model big enough to learn the general answers' first words within an epoch (a 1-layer,
    # width-32 model scores token F1 0 either way at this budget, and ASHA cannot prune a tie)
    data["model"]["tiny"].update(hidden_size=64, intermediate_size=128, layers=2)
    data["evaluate"]["general"].update(n=8, max_new_tokens=16)
    path.write_text(yaml.safe_dump(data))
    sweep, sp = load_sweep(path)
    outcome = run_sweep(sweep, sp)

    runs = _runs(outcome.tracking_uri, outcome.parent_run_id).set_index("params.train.lr")
    pruned, kept = runs.loc["1e-09"], runs.loc["0.01"]
    status = {r["run_id"]: r["status"] for r in outcome.rows}
    assert status[kept["run_id"]] == "ok" and status[pruned["run_id"]] == "pruned"
    assert [r["run_id"] for r in outcome.front] == [kept["run_id"]]
    assert pruned["status"] == "KILLED" and kept["status"] == "FINISHED"
    epoch = int(re.fullmatch(r"after epoch (\d) of the final stage",
                             pruned["tags.sftmix.pruned"]).group(1))
    assert epoch in (1, 2)  # stopped before its final epoch
    assert math.isnan(pruned["metrics.general"])  # a partial score is never the objective
    client = mlflow.tracking.MlflowClient(outcome.tracking_uri)
    curve = {m.step: m.value for m in client.get_metric_history(kept["run_id"],
                                                                 "general_by_epoch")}
    assert sorted(curve) == [1, 2]  # epochs 1 and 2; epoch 3 is the final result
    assert pruned["metrics.general_at_prune"] < curve[epoch]  # behind its peer at that rung
    assert 0 <= kept["metrics.general"] <= 1
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(
        str(Path(sweep.storage) / sweep.name / "optuna.journal")))
    study = optuna.load_study(study_name=sweep.name, storage=storage)
    states = {t.params["train.lr"]: t.state for t in study.trials}
    assert states == {1e-2: optuna.trial.TrialState.COMPLETE,
                      1e-9: optuna.trial.TrialState.PRUNED}
    assert study.trials[0].values == [pytest.approx(kept["metrics.general"])]
