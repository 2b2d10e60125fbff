"""Run a sweep: prepare data once, start (or join) Ray, search with Optuna through Ray Tune, track
in MLflow, and compute the Pareto front of the trials that finished."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import SweepConfig
from ..data.prepare import prepare
from ..pareto import front_of
from .runtime import ensure_ray, trial_capacity
from .spaces import DefineByRun, SearchSpace, describe, grid_points, raw_params

TRIAL_DRIVER_CPU = 0.01  # the trial function only waits on its TorchTrainer


@dataclass
class SweepOutcome:
    parent_run_id: str
    experiment_id: str
    tracking_uri: str
    rows: list[dict] = field(default_factory=list)  # one per trial
    front: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def build_searcher(sweep: SweepConfig, space: SearchSpace, study_storage=None):
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    seed = sweep.search.seed
    objectives = sweep.search.objectives
    cons = Constraints(sweep.search.constraints, objectives) if sweep.search.constraints else None
    samplers = {"tpe": lambda: optuna.samplers.TPESampler(seed=seed, constraints_func=cons),
                "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed, constraints_func=cons),
                "gp": lambda: optuna.samplers.GPSampler(seed=seed, constraints_func=cons),
                "random": lambda: optuna.samplers.RandomSampler(seed=seed)}
    warm = [raw_params(p, space) for p in sweep.search.warm_start or []]
    return OptunaSearch(DefineByRun(space), metric=list(objectives), mode=list(objectives.values()),
                        sampler=samplers[sweep.search.algorithm](), storage=study_storage,
                        points_to_evaluate=warm or None)


class Constraints:
    """Optuna's constraints_func: a value ≤ 0 means satisfied. Bounds are on objectives, so they
    are read from the trial's own values (a class, not a closure: Tune pickles the searcher)."""

    def __init__(self, bounds: dict[str, float], objectives: dict[str, str]):
        self.bounds, self.names, self.modes = bounds, list(objectives), dict(objectives)

    def __call__(self, trial) -> list[float]:
        out = []
        for name, bound in self.bounds.items():
            value = trial.values[self.names.index(name)] if trial.values else float("nan")
            out.append(bound - value if self.modes[name] == "max" else value - bound)
        return out


def trial_point(config: dict) -> dict:
    return config["point"] if "point" in config else config


def run_sweep(sweep: SweepConfig, space: SearchSpace, *, address: str | None = None,
              console=None, quiet_ray: bool = True) -> SweepOutcome:
    from ray import tune

    from ..tracking import MLflowTrialCallback, SweepTracker
    from ..trial import run_trial
    from .progress import ProgressCallback

    t0 = time.time()
    storage = Path(sweep.storage).resolve()
    prepared = prepare(sweep, storage / "cache")
    tracker = SweepTracker(sweep.tracking_uri(), sweep.experiment_name(), sweep.name,
                           tags={"sftmix.data_key": prepared.key,
                                 "sftmix.search": sweep.search.algorithm})
    sweep_params = {"model": sweep.model.name or "tiny-llama", "seed": sweep.train.seed,
                    "epochs": sweep.train.epochs, "lr": sweep.train.lr}
    for key, value in {**sweep_params, "search": sweep.search.algorithm,
                       "num_samples": sweep.search.num_samples,
                       "objectives": ",".join(f"{k}:{v}" for k, v in sweep.search.objectives.items()),
                       "domains": ",".join(space.domains)}.items():
        tracker.client.log_param(tracker.parent_id, key, value)
    tracker.client.log_dict(tracker.parent_id, sweep.model_dump(mode="json"), "sweep.json")
    tracker.client.log_dict(tracker.parent_id, space.model_dump(mode="json"), "search_space.json")
    tracker.client.log_dict(tracker.parent_id, prepared.domains, "data_domains.json")
    status = "FAILED"
    try:
        ensure_ray(address, quiet=quiet_ray)
        per_trial = {"CPU": sweep.train.workers * sweep.train.cpus_per_worker,
                     "GPU": sweep.train.workers * sweep.train.gpus_per_worker}
        concurrency = max(1, min(sweep.search.max_concurrent, trial_capacity(per_trial)))
        if sweep.search.algorithm == "grid":
            points = grid_points(space)
            param_space, search_alg = {"point": tune.grid_search(points)}, None
            seeds = sweep.search.seeds or [sweep.train.seed]
            if sweep.search.seeds:
                param_space["seed"] = tune.grid_search(seeds)
            total = len(points) * len(seeds) * sweep.search.num_samples
        else:
            param_space, search_alg = {}, build_searcher(sweep, space)
            total = sweep.search.num_samples
        trainable = tune.with_resources(
            tune.with_parameters(run_trial, sweep=sweep.model_dump(mode="json"),
                                 space=space.model_dump(mode="json"),
                                 prepared=prepared.__dict__, storage=str(storage / sweep.name)),
            {"cpu": TRIAL_DRIVER_CPU})
        callbacks = [MLflowTrialCallback(tracker, sweep_params),
                     ProgressCallback(total, list(sweep.search.objectives), console)]
        tuner = tune.Tuner(
            trainable, param_space=param_space,
            tune_config=tune.TuneConfig(search_alg=search_alg, num_samples=sweep.search.num_samples,
                                        max_concurrent_trials=concurrency,
                                        # the trial driver process (and its imports) is reused
                                        reuse_actors=True),
            run_config=tune.RunConfig(name=sweep.name, storage_path=str(storage), verbose=0,
                                      callbacks=callbacks,
                                      failure_config=tune.FailureConfig(max_failures=0)))
        tuner.fit()
        rows = _rows(callbacks[0].trials, list(sweep.search.objectives))
        front = front_of([r for r in rows if r["status"] == "ok"], sweep.search.objectives)
        _log_answer(tracker, rows, front)
        status = "FINISHED"
        return SweepOutcome(tracker.parent_id, tracker.experiment_id, tracker.uri, rows, front,
                            time.time() - t0)
    finally:
        tracker.finish(status)


def _rows(trials: dict, objectives: list[str]) -> list[dict]:
    rows = []
    for trial_id, t in trials.items():
        point, metrics = trial_point(t["config"]), t.get("result") or {}
        row = {"trial_id": trial_id, "run_id": t["run_id"], "strategy": point.get("strategy"),
               "k": point.get("k"), "amount": point.get("amount"),
               "ratio": point.get("ratio") or {}, "mixture": describe(point),
               "status": t["status"], "error": t.get("error", "")}
        for name in objectives + ["train_loss", "train_seconds", "eval_seconds"]:
            v = metrics.get(name)
            row[name] = float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None
        rows.append(row)
    return rows


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
                              sum(r["status"] != "ok" for r in rows))
    tracker.client.log_metric(tracker.parent_id, "pareto_size", len(front))
