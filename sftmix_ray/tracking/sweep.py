"""A sweep's parent run: created before any trial runs (so a SQLite store never sees concurrent
writers; only the driver writes), its settings and data logged once, its answer read back from
its child runs, so a resumed sweep's answer covers the trials finished before the driver died."""

from __future__ import annotations

import math
import os

from ..config.point import TrialPoint
from ..redact import redact_tree
from .front import run_status
from .store import client_for, experiment_id


class SweepTracker:
    """The sweep's parent run and its client."""

    def __init__(self, tracking_uri: str, experiment: str, sweep_name: str, tags: dict,
                 parent_id: str | None = None):
        # Ray's MLflow integration and mlflow itself honour this env var over explicit names.
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
        self.uri = tracking_uri
        self._client = client_for(tracking_uri)
        self.experiment_id = experiment_id(self._client, experiment)
        # MLflow 3's UI opens an experiment on its GenAI overview unless told it holds model
        # training runs; then it opens on the runs table, where the front can be filtered.
        self._client.set_experiment_tag(self.experiment_id, "mlflow.experimentKind",
                                        "custom_model_development")
        if parent_id is not None:  # a resumed sweep goes on in its own parent run
            self.parent_id = parent_id
            self.client.update_run(parent_id, status="RUNNING")
            return
        run = self.client.create_run(self.experiment_id, run_name=sweep_name,
                                     tags={"sftmix.kind": "sweep", **tags})
        self.parent_id = run.info.run_id

    @property
    def client(self):
        if self._client is None:
            self._client = client_for(self.uri)
        return self._client

    def __getstate__(self):
        # Tune pickles its callbacks with the experiment state; a client holds locks.
        return {**self.__dict__, "_client": None}

    def log_sweep(self, sweep, space, data_domains: dict, sweep_params: dict) -> None:
        """The sweep's settings as params, and the sweep, space and data as JSON artifacts."""
        params = {**sweep_params, "search": sweep.search.algorithm,
                  "num_samples": sweep.search.num_samples,
                  "objectives": ",".join(f"{k}:{v}" for k, v in sweep.search.objectives.items()),
                  "domains": ",".join(space.domains)}
        for key, value in params.items():
            self.client.log_param(self.parent_id, key, value)
        # a storage URL may carry its password (postgresql://user:pw@…): never into MLflow
        self.client.log_dict(self.parent_id, redact_tree(sweep.model_dump(mode="json")),
                             "sweep.json")
        self.client.log_dict(self.parent_id, space.model_dump(mode="json"), "search_space.json")
        self.client.log_dict(self.parent_id, data_domains, "data_domains.json")

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.parent_id, status=status)


def answer_rows(runs: list, analysis, objectives: list[str]) -> list[dict]:
    """One row per trial, for the sweep's printed answer."""
    front = set(analysis.front_ids())
    rows = []
    for r in runs:
        point = TrialPoint.from_params(r.params)
        row = {"trial_id": r.tags.get("sftmix.trial_id", r.run_id), "run_id": r.run_id,
               "strategy": r.params.get("strategy"), "k": point.k, "amount": point.amount,
               "ratio": point.ratio or {}, "mixture": point.describe(),
               "status": run_status(r), "error": r.tags.get("sftmix.error", ""),
               "pareto_front": r.run_id in front}
        for name in objectives + ["train_loss", "train_seconds", "eval_seconds"]:
            v = r.metrics.get(name)
            row[name] = float(v) if v is not None and math.isfinite(v) else None
        rows.append(row)
    return sorted(rows, key=lambda r: r["trial_id"])
