"""Read a sweep's trials (or any experiment's runs) back from MLflow, so the analysis works on
sweeps run by `sftmix run` and on any experiment whose runs carry the objective metrics; and the
small artifact reads and writes the report needs."""

from __future__ import annotations

from dataclasses import dataclass, field

from .store import MAX_RUNS, PARENT_TAG, child_runs, client_for


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

    if (sweep is None) == (experiment is None):
        raise RunsError("give exactly one of --sweep RUN_ID or --experiment NAME")
    client = client_for(tracking_uri)
    if sweep is not None:
        try:
            parent = client.get_run(sweep)
        except MlflowException:
            raise RunsError(f"--sweep: no run {sweep!r} at {tracking_uri}") from None
        children = child_runs(client, parent.info.experiment_id, sweep)
        return _convert(parent), sorted((_convert(r) for r in children), key=lambda r: r.name)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise RunsError(f"--experiment: no experiment {experiment!r} at {tracking_uri}")
    runs = [_convert(r) for r in client.search_runs([exp.experiment_id], max_results=MAX_RUNS)]
    parents = {r.tags.get(PARENT_TAG) for r in runs}
    return None, sorted((r for r in runs if r.run_id not in parents), key=lambda r: r.name)


def latest_sweep(tracking_uri: str, experiment: str) -> Run | None:
    """The newest sweep parent run of an experiment (tag sftmix.kind = sweep), or None: what
    `--from EXPERIMENT` reads the sweep file and space from."""
    client = client_for(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    found = client.search_runs([exp.experiment_id], filter_string="tags.`sftmix.kind` = 'sweep'",
                               order_by=["attributes.start_time DESC"], max_results=1)
    return _convert(found[0]) if found else None


def artifact_dict(tracking_uri: str, run_id: str, path: str) -> dict | None:
    """A JSON artifact of a run, or None (an experiment not made by sftmix has none)."""
    import os

    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        mlflow.set_tracking_uri(tracking_uri)
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/{path}")
    except Exception:  # noqa: BLE001 - any missing or unreadable artifact means "none"
        return None


def attach_directory(tracking_uri: str, run_id: str, directory, artifact_path: str) -> None:
    client_for(tracking_uri).log_artifacts(run_id, str(directory), artifact_path)


def online_trajectories(tracking_uri: str, runs: list[Run], domains: list[str]
                        ) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Each finished online trial's weight trajectory, from its MLflow metric history:
    run name -> domain -> [(optimizer step, weight)]."""
    client = client_for(tracking_uri)
    out = {}
    for r in runs:
        if r.params.get("strategy") != "online" or r.status != "FINISHED":
            continue
        label = f"{r.name} ({r.params.get('online.method', '?')})"
        out[label] = {d: sorted((m.step, m.value) for m in
                                client.get_metric_history(r.run_id, f"weight_{d}"))
                      for d in domains}
    return out
