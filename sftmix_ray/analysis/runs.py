"""Read a sweep's trials (or any experiment's runs) back from MLflow, so the analysis works on
sweeps run by `sftmix run` and on any experiment whose runs carry the objective metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

PARENT_TAG = "mlflow.parentRunId"


@dataclass
class Run:
    run_id: str
    name: str
    status: str
    params: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)


class RunsError(ValueError):
    pass


def _convert(r) -> Run:
    return Run(r.info.run_id, r.info.run_name or r.info.run_id[:8], r.info.status,
               dict(r.data.params), dict(r.data.metrics), dict(r.data.tags))


def load_runs(tracking_uri: str, *, sweep: str | None = None,
              experiment: str | None = None) -> tuple[Run | None, list[Run]]:
    """(parent, trials) for `sweep` (a parent run id), or (None, runs) for an experiment by
    name; parent runs of an experiment are left out of its runs."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if (sweep is None) == (experiment is None):
        raise RunsError("give exactly one of --sweep RUN_ID or --experiment NAME")
    client = MlflowClient(tracking_uri)
    if sweep is not None:
        try:
            parent = client.get_run(sweep)
        except MlflowException:
            raise RunsError(f"--sweep: no run {sweep!r} at {tracking_uri}") from None
        children = client.search_runs([parent.info.experiment_id],
                                      filter_string=f"tags.`{PARENT_TAG}` = '{sweep}'",
                                      max_results=50_000)
        return _convert(parent), sorted((_convert(r) for r in children), key=lambda r: r.name)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise RunsError(f"--experiment: no experiment {experiment!r} at {tracking_uri}")
    runs = [_convert(r) for r in client.search_runs([exp.experiment_id], max_results=50_000)]
    parents = {r.tags.get(PARENT_TAG) for r in runs}
    return None, sorted((r for r in runs if r.run_id not in parents), key=lambda r: r.name)
