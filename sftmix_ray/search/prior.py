"""The finished trials a surrogate search starts from: proxy or earlier sweeps, named by a parent
run id or an experiment, read back from MLflow before anything is launched."""

from __future__ import annotations

from ..analysis.records import Record, records_from_runs
from ..config.load import ConfigError
from ..tracking.runs import RunsError, load_runs
from ..tracking.store import resolve_uri


def load_source(uri: str, ref: str) -> tuple[object | None, list]:
    """(parent, runs) for `ref`: a sweep's parent run id, else an experiment's name."""
    try:
        return load_runs(uri, sweep=ref)
    except RunsError:
        pass
    try:
        return load_runs(uri, experiment=ref)
    except RunsError:
        raise RunsError(f"{ref!r} is neither a run id nor an experiment at {uri}") from None


def source_records(uri: str, ref: str, objectives: list[str], fidelity: float) -> list[Record]:
    """The trials of `ref` that finished with every objective, as records at `fidelity`."""
    _, runs = load_source(uri, ref)
    records = records_from_runs(runs, objectives, fidelity=fidelity, source=ref)
    if not records:
        raise RunsError(f"{ref!r}: none of its {len(runs)} runs finished with every objective "
                        f"({', '.join(objectives)})")
    return records


def load_prior(sweep) -> list[Record]:
    """Every `search.proxies` source's records; any source that cannot be read is a config
    problem, reported (all at once) before Ray starts or MLflow is written."""
    problems, records = [], []
    objectives = list(sweep.search.objectives)
    for i, src in enumerate(sweep.search.proxies or []):
        uri = resolve_uri(src.tracking_uri or sweep.tracking.uri)
        if src.sweep is not None:
            loader = {"sweep": src.sweep}
        else:
            loader = {"experiment": src.experiment}
        try:
            _, runs = load_runs(uri, **loader)
        except RunsError as exc:
            problems.append(f"search.proxies[{i}]: {exc}")
            continue
        found = records_from_runs(runs, objectives, fidelity=src.fidelity,
                                  source=src.sweep or src.experiment)
        if not found:
            problems.append(f"search.proxies[{i}]: no finished run carries every objective "
                            f"({', '.join(objectives)})")
        records += found
    if problems:
        raise ConfigError(sweep.name, problems)
    return records
