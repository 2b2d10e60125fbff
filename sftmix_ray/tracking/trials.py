"""A child run per trial, written by the driver through a Tune callback (so a SQLite store never
sees concurrent writers): params when a trial starts, metrics and artifacts when it ends, FAILED
with the reason on error, KILLED with a tag when the pruner stops it."""

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
from .store import PARENT_TAG, child_runs
from .sweep import SweepTracker


def numeric(metrics: dict) -> dict:
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _last_line(message: str) -> str:
    lines = [ln for ln in message.strip().splitlines() if ln.strip()]
    return lines[-1][:500] if lines else "trial failed"


class MLflowTrialCallback(Callback):
    """Child run per trial: params at start, metrics and artifacts at the end, FAILED on error."""

    def __init__(self, tracker: SweepTracker, sweep_params: dict):
        self.t = tracker
        self.sweep_params = sweep_params
        self.trials: dict[str, dict] = {}  # trial_id -> run_id, config, status, result, error
        self._children = None  # the parent's child runs when this driver started

    def __getstate__(self):
        return {**self.__dict__, "_children": None}  # a restored driver reads them again

    def _existing_run(self, trial_id: str, params: dict) -> str | None:
        """The child run of a trial that started before the driver died, so a resumed trial
        continues its own run instead of leaving an orphan beside a new one: the same Tune trial,
        or (when Tune had not saved that trial yet and the restored searcher proposed the same
        point again under a new id) a RUNNING run with the same parameters."""
        if getattr(self, "_children", None) is None:  # (state pickled before it existed)
            # Read once per driver: a fresh sweep has no earlier runs to find, and a resumed
            # one's all exist before its first trial starts. Searching the parent's children at
            # every trial start made each start cost O(trials so far) (benchmarks/scale.py).
            self._children = child_runs(self.t.client, self.t.experiment_id, self.t.parent_id)
        children = self._children
        mine = {e["run_id"] for e in self.trials.values()}
        for run in children:
            if run.data.tags.get("sftmix.trial_id") == trial_id:
                return run.info.run_id
        wanted = {k: "" if v is None else str(v) for k, v in params.items()}
        for run in children:
            if run.info.status == "RUNNING" and run.info.run_id not in mine and \
                    all(run.data.params.get(k) == v for k, v in wanted.items()):
                self.t.client.set_tag(run.info.run_id, "sftmix.trial_id", trial_id)
                self.t.client.set_tag(run.info.run_id, "mlflow.runName", f"trial-{trial_id}")
                return run.info.run_id
        return None

    def close_orphans(self) -> None:
        """Child runs still RUNNING when the sweep ends were started by a driver that died and
        never resumed: they are KILLED, with the reason, so the UI shows no live trial."""
        children = child_runs(self.t.client, self.t.experiment_id, self.t.parent_id)
        for run in children:
            if run.info.status == "RUNNING":
                self.t.client.set_tag(run.info.run_id, "sftmix.error",
                                      "the driver died during this trial; it was not resumed")
                self.t.client.set_terminated(run.info.run_id, "KILLED")

    def on_trial_start(self, iteration, trials, trial, **info):
        if trial.trial_id in self.trials:
            return
        # The point's own seed (a grid repeated over seeds) replaces the sweep's.
        params = {**self.sweep_params, **TrialPoint.of_trial(trial.config).flat_params()}
        existing = self._existing_run(trial.trial_id, params)
        if existing is not None:
            self.t.client.update_run(existing, status="RUNNING")
            self.trials[trial.trial_id] = {"run_id": existing, "config": trial.config,
                                           "status": "running"}
            return
        run = self.t.client.create_run(
            self.t.experiment_id, run_name=f"trial-{trial.trial_id}",
            tags={PARENT_TAG: self.t.parent_id, "sftmix.kind": "trial",
                  "sftmix.trial_id": trial.trial_id})
        self.trials[trial.trial_id] = {"run_id": run.info.run_id, "config": trial.config,
                                       "status": "running"}
        for key, value in params.items():
            self.t.client.log_param(run.info.run_id, key, "" if value is None else value)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        """Pruning sweeps report the objective after each epoch of the final stage: a curve per
        trial (`<ability>_by_epoch`, step = epoch) in the MLflow UI."""
        entry = self.trials.get(trial.trial_id)
        if entry is None or not is_intermediate(result):
            return
        for k, v in numeric(result).items():
            if k in ABILITY_NAMES:
                self.t.client.log_metric(entry["run_id"], f"{k}_by_epoch", v,
                                         step=int(result.get(EPOCH, 0)))

    def on_trial_complete(self, iteration, trials, trial, **info):
        entry = self.trials.get(trial.trial_id)
        if entry is None:
            return
        run_id, result = entry["run_id"], trial.last_result or {}
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        if is_intermediate(result):
            # Stopped by the pruner: its partial score is kept under its own name, never as the
            # objective, so no front or report takes it for a finished trial's.
            entry.update(status="pruned", result=result)
            epoch = int(result.get(EPOCH, 0))
            self.t.client.log_batch(run_id, metrics=[
                Metric(f"{k}_at_prune", v, now, epoch) for k, v in numeric(result).items()
                if k in ABILITY_NAMES])
            self.t.client.set_tag(run_id, "sftmix.pruned", f"after epoch {epoch} of the final "
                                                           f"stage")
            self.t.client.set_terminated(run_id, "KILLED")
            return
        entry.update(status="ok", result=result)
        self.t.client.log_batch(run_id, metrics=[Metric(k, v, now, 0)
                                                 for k, v in numeric(result).items()])
        if result.get("manifest_hash"):
            self.t.client.set_tag(run_id, "sftmix.manifest_hash", result["manifest_hash"])
            self.t.client.log_dict(run_id, json.loads(result["manifest"]), "manifest.json")
        if result.get("general_scorer"):
            self.t.client.set_tag(run_id, "general_scorer", result["general_scorer"])
        records = result.get("records_dir")
        local = fetch_files(records) if records else None
        if local is not None:
            # The small JSON results go to MLflow; the weights stay in the trial's checkpoint
            # (a path, or a URI with object storage), named by a tag (`sftmix eval --model
            # <path>` scores them again).
            for path in sorted(local.glob("*.json")):
                self.t.client.log_artifact(run_id, str(path), "evaluation")
            if is_uri(records):
                shutil.rmtree(local, ignore_errors=True)
            model = f"{records}/model"
            if uri_exists(model) if is_uri(records) else Path(model).is_dir():
                self.t.client.set_tag(run_id, "sftmix.model_path", model)
        self.t.client.set_terminated(run_id, "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info):
        entry = self.trials.get(trial.trial_id)
        if entry is None:
            return
        run_id, message = entry["run_id"], ""
        if trial.error_file and Path(trial.error_file).is_file():
            # A traceback may quote a key (a judge's 401 body, an env dump): cut secrets out.
            message = redact(_ANSI.sub("", Path(trial.error_file).read_text()))
        entry.update(status="failed", error=_last_line(message))
        # The reason as a tag (filterable in the UI), the whole traceback as an artifact.
        self.t.client.set_tag(run_id, "sftmix.error", entry["error"])
        if message:
            self.t.client.log_text(run_id, message, "error.txt")
        self.t.client.set_terminated(run_id, "FAILED")
