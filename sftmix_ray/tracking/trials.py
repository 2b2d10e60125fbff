"""A child run per trial, written by the driver through a Tune callback (so a SQLite store never
sees concurrent writers) and the sweep's write queue (so a tracking server's outage loses
nothing): params when a trial starts, metrics and artifacts when it ends, FAILED with the reason
on error, KILLED with a tag when the pruner stops it."""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from pathlib import Path

from ray.tune import Callback

from ..config.point import TrialPoint
from ..config.schema import ABILITY_NAMES
from ..redact import redact
from ..storage import fetch_files, is_uri, uri_exists
from ..train.reports import EPOCH, is_intermediate
from .queue import TrackingQueue
from .store import child_runs
from .sweep import SweepTracker


def numeric(metrics: dict) -> dict:
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


DESCRIPTION = "mlflow.note.content"  # the run's description in the MLflow UI


def describe_trial(config: dict, result: dict | None = None,
                   scores: tuple[str, ...] = ABILITY_NAMES) -> str:
    """The trial in words, as the progress line has it: strategy and settings, the mixture as
    shares and samples, then its scores (`dmt k=1/64: 33% math · 48% code · 19% general,
    1,216 samples → math 0.234 code 0.984 general 0.478`)."""
    point = TrialPoint.of_trial(config)
    text = f"{point.strategy}{point.settings()}: {point.describe()}"
    shown = [f"{k} {result[k]:.3f}" for k in scores
             if isinstance((result or {}).get(k), (int, float))]
    return text + (f" → {' '.join(shown)}" if shown else "")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def online_writes(trajectory: str | None, now: int) -> tuple[list, dict]:
    """An online trial's weight trajectory as MLflow metric history (step: optimizer step):
    `weight_<domain>` after each update, `online_loss_<domain>` (and doremi's
    `reference_loss_<domain>`) over each interval; its final and step-averaged weights as
    params `weights_final.<domain>`, `weights_mean.<domain>`."""
    if not trajectory:
        return [], {}
    t = json.loads(trajectory)
    metrics = []
    for point in t["history"]:
        for key, name in (("weights", "weight"), ("loss", "online_loss"),
                          ("reference_loss", "reference_loss")):
            metrics += [(f"{name}_{d}", float(v), now, int(point["step"]))
                        for d, v in zip(t["domains"], point.get(key) or []) if v is not None]
    params = {f"weights_{kind}.{d}": f"{v:.6f}" for kind in ("final", "mean")
              for d, v in t[kind].items()}
    return metrics, params


def _last_line(message: str) -> str:
    lines = [ln for ln in message.strip().splitlines() if ln.strip()]
    return lines[-1][:500] if lines else "trial failed"


class MLflowTrialCallback(Callback):
    """Child run per trial: params at start, metrics and artifacts at the end, FAILED on error.
    Every write goes through the sweep's `TrackingQueue`, so a tracking server that is down for
    a while delays the writes and loses none."""

    def __init__(self, tracker: SweepTracker, sweep_params: dict, queue: TrackingQueue,
                 scores: tuple[str, ...] = ABILITY_NAMES):
        self.t = tracker
        self.sweep_params = sweep_params
        self.q = queue
        self.scores = tuple(scores)  # what a run's description lists (config.checks.scored_names)
        self.trials: dict[str, dict] = {}  # trial_id -> config, status, result, error

    def close_orphans(self) -> None:
        """Child runs still RUNNING when the sweep ends were started by a driver that died and
        never resumed: they are KILLED, with the reason, so the UI shows no live trial."""
        children = child_runs(self.t.client, self.t.experiment_id, self.t.parent_id)
        for run in children:
            if run.info.status == "RUNNING":
                self.t.client.set_tag(run.info.run_id, "sftmix.error",
                                      "the driver died during this trial; it was not resumed")
                self.t.client.set_terminated(run.info.run_id, "KILLED")

    def on_step_end(self, iteration, trials, **info):
        self.q.flush()  # during an outage: asks the server again every few seconds

    def on_experiment_end(self, trials, **info):
        self.q.flush(force=True)

    def on_trial_start(self, iteration, trials, trial, **info):
        if trial.trial_id in self.trials:
            return
        # The point's own seed (a grid repeated over seeds) replaces the sweep's.
        params = {**self.sweep_params, **TrialPoint.of_trial(trial.config).flat_params()}
        self.trials[trial.trial_id] = {"config": trial.config, "status": "running"}
        # `live`: the trials this driver runs, whose runs a re-proposed point must not take
        self.q.submit("open", trial.trial_id, live=sorted(self.trials),
                      params={k: "" if v is None else str(v) for k, v in params.items()})
        self.q.submit("batch", trial.trial_id, tags={DESCRIPTION: describe_trial(trial.config)})

    def on_trial_result(self, iteration, trials, trial, result, **info):
        """Pruning sweeps report the objective after each epoch of the final stage: a curve per
        trial (`<ability>_by_epoch`, step = epoch) in the MLflow UI."""
        entry = self.trials.get(trial.trial_id)
        if entry is None or not is_intermediate(result):
            return
        now, epoch = int(time.time() * 1000), int(result.get(EPOCH, 0))
        self.q.submit("batch", trial.trial_id, metrics=[
            (f"{k}_by_epoch", v, now, epoch) for k, v in numeric(result).items()
            if k in ABILITY_NAMES])

    def on_trial_complete(self, iteration, trials, trial, **info):
        entry, tid = self.trials.get(trial.trial_id), trial.trial_id
        if entry is None:
            return
        result, now = trial.last_result or {}, int(time.time() * 1000)
        if is_intermediate(result):
            # Stopped by the pruner: its partial score is kept under its own name, never as the
            # objective, so no front or report takes it for a finished trial's.
            entry.update(status="pruned", result=result)
            epoch = int(result.get(EPOCH, 0))
            self.q.submit("batch", tid, metrics=[
                (f"{k}_at_prune", v, now, epoch) for k, v in numeric(result).items()
                if k in ABILITY_NAMES],
                tags={"sftmix.pruned": f"after epoch {epoch} of the final stage"})
            self.q.submit("end", tid, status="KILLED", end_time=now)
            return
        entry.update(status="ok", result=result)
        tags = {k: result[r] for k, r in (("sftmix.manifest_hash", "manifest_hash"),
                                          ("general_scorer", "general_scorer"),
                                          ("sftmix.eval_dtype", "eval_dtype")) if result.get(r)}
        tags[DESCRIPTION] = describe_trial(trial.config, result, self.scores)
        records = result.get("records_dir")
        # straight on the sweep's storage (a path), or inside the trial's checkpoint
        model = result.get("model_path") or (f"{records}/model" if records else None)
        if model and (uri_exists(model) if is_uri(model) else Path(model).is_dir()):
            # The small JSON results go to MLflow; the weights stay on the sweep's storage
            # (a path, or a URI with object storage), named by a tag (`sftmix eval --model
            # <path>` scores them again).
            tags["sftmix.model_path"] = model
        history = [(k, v, now, step) for k, points in  # loss_<domain> after each epoch
                   json.loads(result.get("heldout_history") or "{}").items() for step, v in points]
        trajectory, weights = online_writes(result.get("online_trajectory"), now)
        self.q.submit("batch", tid, metrics=[(k, v, now, 0) for k, v in numeric(result).items()]
                      + history + trajectory, tags=tags, params=weights)
        if result.get("manifest_hash"):
            self.q.submit("dict", tid, data=json.loads(result["manifest"]), file="manifest.json")
        local = fetch_files(records) if records else None
        if local is not None:
            for path in sorted(local.glob("*.json")):
                self.q.submit("artifact", tid, path=str(path), artifact_path="evaluation")
            if is_uri(records):
                shutil.rmtree(local, ignore_errors=True)
        self.q.submit("end", tid, status="FINISHED", end_time=now)

    def on_trial_error(self, iteration, trials, trial, **info):
        entry = self.trials.get(trial.trial_id)
        if entry is None:
            return
        message = ""
        if trial.error_file and Path(trial.error_file).is_file():
            # A traceback may quote a key (a judge's 401 body, an env dump): cut secrets out.
            message = redact(_ANSI.sub("", Path(trial.error_file).read_text()))
        entry.update(status="failed", error=_last_line(message))
        # The reason as a tag (filterable in the UI), the whole traceback as an artifact.
        self.q.submit("batch", trial.trial_id, tags={"sftmix.error": entry["error"]})
        if message:
            self.q.submit("text", trial.trial_id, text=message, file="error.txt")
        self.q.submit("end", trial.trial_id, status="FAILED", end_time=int(time.time() * 1000))
