"""Where a sweep's MLflow records live, and the queries every reader shares: the tracking URI
(given, from the environment, or the default SQLite file), the experiment (got or created), and
a sweep's child runs (tag `mlflow.parentRunId`)."""

from __future__ import annotations

import os
from pathlib import Path

PARENT_TAG = "mlflow.parentRunId"
MAX_RUNS = 50_000


def resolve_uri(option: str | None = None) -> str:
    """The tracking URI: the one given, else MLFLOW_TRACKING_URI, else ./mlflow.db (SQLite, the
    default store of MLflow 3; the file store is deprecated)."""
    return option or os.environ.get("MLFLOW_TRACKING_URI") or \
        f"sqlite:///{Path('mlflow.db').resolve()}"


def experiment_name(sweep) -> str:
    return sweep.tracking.experiment or f"sftmix-{sweep.name}"


def client_for(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def experiment_id(client, name: str) -> str:
    """The experiment's id, created if it does not exist yet."""
    exp = client.get_experiment_by_name(name)
    return exp.experiment_id if exp else client.create_experiment(name)


def child_runs(client, experiment: str, parent_id: str) -> list:
    return client.search_runs([experiment], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}'",
                              max_results=MAX_RUNS)
