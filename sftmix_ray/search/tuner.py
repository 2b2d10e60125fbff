"""Run a sweep: prepare data once, start (or join) Ray, search with Optuna through Ray Tune, track
in MLflow, and compute the Pareto front of the trials that finished."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import SweepConfig
from ..data.prepare import prepare
from ..pareto import front_of
from ..storage import (cache_root, experiment_location, is_uri, state_dir, storage_root,
                       uri_exists)
from .runtime import ensure_ray, trial_capacity
from .searcher import build_searcher
from .spaces import SearchSpace, describe, grid_points

PARENT_TAG = "mlflow.parentRunId"
TRIAL_DRIVER_CPU = 0.01  # the trial function only waits on its TorchTrainer


@dataclass
class SweepOutcome:
    parent_run_id: str
    experiment_id: str
    tracking_uri: str
    rows: list[dict] = field(default_factory=list)  # one per trial
    front: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def trial_point(config: dict) -> dict:
    return config["point"] if "point" in config else config


STATE_FILE = "sftmix_sweep.json"


class ResumeError(ValueError):
    pass


def study_storage(sweep: SweepConfig, exp_dir: Path):
    """The Optuna study's durable home: an RDB URL from `search.study_storage`, or a journal file
    beside the Tune experiment (it survives the driver; JournalFileBackend locks for writers)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    if sweep.search.study_storage:
        return optuna.storages.RDBStorage(sweep.search.study_storage)
    exp_dir.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(exp_dir / "optuna.journal")))


def run_sweep(sweep: SweepConfig, space: SearchSpace, *, address: str | None = None,
              console=None, quiet_ray: bool = True, resume: bool = False) -> SweepOutcome:
    """Run a sweep, or (resume=True) bring back one whose driver died and complete it: the Tune
    experiment, the Optuna study and the MLflow parent run all continue where they were."""
    from ray import tune

    from ..tracking import MLflowTrialCallback, SweepTracker
    from ..trial import run_trial

    t0 = time.time()
    experiment = experiment_location(sweep.storage, sweep.name)  # a path or a URI
    exp_dir = state_dir(sweep.storage, sweep.cache_dir, sweep.name)  # the driver's own files
    state_path = exp_dir / STATE_FILE
    if resume:
        if not state_path.is_file() or not tune.Tuner.can_restore(experiment):
            raise ResumeError(f"nothing to resume: no sweep {sweep.name!r} at {experiment}")
        state = json.loads(state_path.read_text())
    else:
        _keep_earlier_run_aside(sweep, experiment, exp_dir, console)
    prepared = prepare(sweep, cache_root(sweep.storage, sweep.cache_dir))
    tracker = SweepTracker(sweep.tracking_uri(), sweep.experiment_name(), sweep.name,
                           tags={"sftmix.data_key": prepared.key,
                                 "sftmix.search": sweep.search.algorithm},
                           parent_id=state["parent_run_id"] if resume else None)
    sweep_params = {"model": sweep.model.name or "tiny-llama", "seed": sweep.train.seed,
                    "epochs": sweep.train.epochs, "lr": sweep.train.lr}
    if not resume:
        _log_sweep(tracker, sweep, space, prepared, sweep_params)
        exp_dir.mkdir(parents=True, exist_ok=True)
        state_path.write_text(json.dumps({"parent_run_id": tracker.parent_id,
                                          "experiment_id": tracker.experiment_id,
                                          "tracking_uri": tracker.uri}))
    status = "FAILED"
    try:
        ensure_ray(address, quiet=quiet_ray)
        per_trial = {"CPU": sweep.train.workers * sweep.train.cpus_per_worker,
                     "GPU": sweep.train.workers * sweep.train.gpus_per_worker}
        concurrency = max(1, min(sweep.search.max_concurrent, trial_capacity(per_trial)))
        trainable = tune.with_resources(
            tune.with_parameters(run_trial, sweep=sweep.model_dump(mode="json"),
                                 space=space.model_dump(mode="json"),
                                 prepared=prepared.__dict__, storage=experiment),
            {"cpu": TRIAL_DRIVER_CPU})
        if resume:
            # Callbacks and the searcher come back from the experiment state; the trainable is
            # given again. Finished trials stay finished; unfinished ones run again.
            tuner = tune.Tuner.restore(experiment, trainable=trainable,
                                       resume_unfinished=True, resume_errored=False,
                                       restart_errored=False)
        else:
            tuner = _new_tuner(sweep, space, trainable, tracker, sweep_params, concurrency,
                               exp_dir, console)
        tuner.fit()
        MLflowTrialCallback(tracker, sweep_params).close_orphans()
        if sweep.search.algorithm != "grid":
            _close_orphans(sweep, exp_dir)
        rows = rows_from_mlflow(tracker, list(sweep.search.objectives))
        front = front_of([r for r in rows if r["status"] == "ok"], sweep.search.objectives)
        _log_answer(tracker, rows, front)
        status = "FINISHED"
        return SweepOutcome(tracker.parent_id, tracker.experiment_id, tracker.uri, rows, front,
                            time.time() - t0)
    finally:
        tracker.finish(status)


def _log_sweep(tracker, sweep, space, prepared, sweep_params) -> None:
    for key, value in {**sweep_params, "search": sweep.search.algorithm,
                       "num_samples": sweep.search.num_samples,
                       "objectives": ",".join(f"{k}:{v}"
                                              for k, v in sweep.search.objectives.items()),
                       "domains": ",".join(space.domains)}.items():
        tracker.client.log_param(tracker.parent_id, key, value)
    tracker.client.log_dict(tracker.parent_id, sweep.model_dump(mode="json"), "sweep.json")
    tracker.client.log_dict(tracker.parent_id, space.model_dump(mode="json"), "search_space.json")
    tracker.client.log_dict(tracker.parent_id, prepared.domains, "data_domains.json")


def _keep_earlier_run_aside(sweep, experiment: str, exp_dir: Path, console) -> None:
    """A fresh run never mixes with an old one's trials or study: on a filesystem the old one is
    moved aside; an object store cannot rename a directory, so there the run is refused."""
    if is_uri(sweep.storage):
        if uri_exists(experiment) or exp_dir.exists():
            raise ResumeError(f"storage already holds a sweep {sweep.name!r} ({experiment}): "
                              f"complete it with `sftmix resume`, or give this sweep another "
                              f"name")
        return
    if not exp_dir.exists():
        return
    aside = exp_dir.with_name(f"{sweep.name}.{time.strftime('%Y%m%d-%H%M%S')}")
    exp_dir.rename(aside)
    if console is not None:
        console.print(f"an earlier run of {sweep.name!r} was moved to {aside}", highlight=False)


def _new_tuner(sweep, space, trainable, tracker, sweep_params, concurrency, exp_dir, console):
    from ray import tune

    from ..tracking import MLflowTrialCallback
    from .progress import ProgressCallback

    if sweep.search.algorithm == "grid":
        points = grid_points(space)
        param_space, search_alg = {"point": tune.grid_search(points)}, None
        seeds = sweep.search.seeds or [sweep.train.seed]
        if sweep.search.seeds:
            param_space["seed"] = tune.grid_search(seeds)
        total = len(points) * len(seeds) * sweep.search.num_samples
    else:
        param_space = {}
        search_alg = build_searcher(sweep, space, study_storage(sweep, exp_dir))
        total = sweep.search.num_samples
    callbacks = [MLflowTrialCallback(tracker, sweep_params),
                 ProgressCallback(total, list(sweep.search.objectives), console)]
    scheduler = None
    if sweep.search.prune is not None:
        from .pruning import asha

        scheduler = asha(sweep.search.prune, sweep.search.objectives)
    return tune.Tuner(
        trainable, param_space=param_space,
        tune_config=tune.TuneConfig(search_alg=search_alg, scheduler=scheduler,
                                    num_samples=sweep.search.num_samples,
                                    max_concurrent_trials=concurrency,
                                    # The trial driver process (and its imports) is reused, except
                                    # when trials can be stopped mid-fit: only ending the stopped
                                    # trial's process takes its TorchTrainer (an actor it owns) and
                                    # that trainer's workers down with it.
                                    reuse_actors=scheduler is None),
        run_config=tune.RunConfig(name=sweep.name, storage_path=storage_root(sweep.storage),
                                  verbose=0,
                                  callbacks=callbacks,
                                  failure_config=tune.FailureConfig(max_failures=0)))


def _close_orphans(sweep, exp_dir: Path) -> None:
    """Optuna trials still RUNNING after fit() belong to a driver that died before Tune saved
    them; nothing runs them now, so they are told FAILED and the study agrees with MLflow."""
    import optuna

    study = optuna.load_study(study_name=sweep.name, storage=study_storage(sweep, exp_dir))
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)


def rows_from_mlflow(tracker, objectives: list[str]) -> list[dict]:
    """One row per trial, read from the sweep's child runs: a resumed sweep's answer covers the
    trials finished before the driver died as well as after."""
    runs = tracker.client.search_runs(
        [tracker.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{tracker.parent_id}'",
        max_results=50_000)
    rows = []
    for r in runs:
        p, m = r.data.params, r.data.metrics
        point = {"strategy": p.get("strategy"), "k": _float(p.get("k")),
                 "amount": int(p["amount"]) if p.get("amount") else None}
        for kind in ("ratio", "fractions", "counts"):
            values = {k.split(".", 1)[1]: float(v) for k, v in p.items()
                      if k.startswith(f"{kind}.")}
            point[kind] = values or None
        status = {"FINISHED": "ok", "FAILED": "failed"}.get(r.info.status, r.info.status.lower())
        if r.data.tags.get("sftmix.pruned"):
            status = "pruned"
        row = {"trial_id": r.data.tags.get("sftmix.trial_id", r.info.run_id),
               "run_id": r.info.run_id, "strategy": point["strategy"], "k": point["k"],
               "amount": point["amount"], "ratio": point["ratio"] or {},
               "mixture": describe(point), "status": status,
               "error": r.data.tags.get("sftmix.error", "")}
        for name in objectives + ["train_loss", "train_seconds", "eval_seconds"]:
            v = m.get(name)
            row[name] = float(v) if v is not None and math.isfinite(v) else None
        rows.append(row)
    return sorted(rows, key=lambda r: r["trial_id"])


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _log_answer(tracker, rows: list[dict], front: list[dict]) -> None:
    front_ids = {r["trial_id"] for r in front}
    for r in rows:
        r["pareto_front"] = r["trial_id"] in front_ids
        if r["run_id"]:
            tracker.client.set_tag(r["run_id"], "pareto_front", str(r["pareto_front"]).lower())
    tracker.client.log_dict(tracker.parent_id, {"trials": rows, "front": [r["trial_id"]
                                                                          for r in front]},
                            "pareto.json")
    tracker.client.log_metric(tracker.parent_id, "trials_ok",
                              sum(r["status"] == "ok" for r in rows))
    tracker.client.log_metric(tracker.parent_id, "trials_failed",
                              sum(r["status"] not in ("ok", "pruned") for r in rows))
    tracker.client.log_metric(tracker.parent_id, "trials_pruned",
                              sum(r["status"] == "pruned" for r in rows))
    tracker.client.log_metric(tracker.parent_id, "pareto_size", len(front))
