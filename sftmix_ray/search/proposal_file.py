"""`sftmix propose`: fit the surrogate to finished sweeps, propose the mixtures predicted to push
the front, and write them as a ready sweep file whose `search.warm_start` holds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from ..analysis.records import Record, point_key
from ..analysis.surrogate import Surrogate
from ..analysis.surrogate_quality import cross_validate, verdict
from ..config.load import ConfigError, load_sweep, read_yaml, resolve_relative, validate_data
from ..config.schema import SweepConfig
from ..config.space import SearchSpace
from ..tracking.runs import RunsError, artifact_dict, latest_sweep
from .prior import load_source, source_records
from .proposals import Proposal, explore, propose


@dataclass
class ProposeResult:
    proposals: list[Proposal]
    quality: dict[str, dict]
    objectives: dict[str, str]
    sweep_file: Path
    records: list[Record] = field(default_factory=list)


def parse_bounds(text: str | None, objectives: dict[str, str]) -> dict[str, float] | None:
    """'general:0.3,code:0.1' → {'general': 0.3, 'code': 0.1}; each must be an objective."""
    if not text:
        return None
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition(":")
        if name not in objectives:
            raise ValueError(f"--constraints: {name!r} is not an objective "
                             f"({', '.join(objectives)})")
        try:
            out[name] = float(value)
        except ValueError:
            raise ValueError(f"--constraints: {part!r} needs a number, e.g. {name}:0.3") from None
    return out


def parse_proxy(text: str) -> tuple[str, float]:
    """'RUN_ID_OR_EXPERIMENT[@FIDELITY]' (fidelity in (0, 1], default 0.5)."""
    ref, _, fid = text.rpartition("@") if "@" in text else (text, "", "")
    try:
        fidelity = float(fid) if fid else 0.5
    except ValueError:
        raise ValueError(f"--proxy: {text!r}: the fidelity after '@' must be a number") from None
    if not 0 < fidelity <= 1:
        raise ValueError(f"--proxy: {text!r}: the fidelity must be in (0, 1]")
    return ref, fidelity


def target_sweep(uri: str, source: str, sweep_file: Path | None
                 ) -> tuple[dict, SweepConfig, SearchSpace, Path | None]:
    """The sweep to propose for, as data and validated: `--sweep FILE`, else the sweep and space
    the source sweep's parent run logged."""
    if sweep_file is not None:
        sweep, space = load_sweep(sweep_file)
        return read_yaml(sweep_file), sweep, space, sweep_file
    parent, _ = load_source(uri, source)
    if parent is None:  # an experiment: its newest sweep names the sweep file and space
        parent = latest_sweep(uri, source)
    logged = artifact_dict(uri, parent.run_id, "sweep.json") if parent else None
    space_data = artifact_dict(uri, parent.run_id, "search_space.json") if parent else None
    if logged is None or space_data is None:
        raise ConfigError("--sweep", [f"--sweep: {source!r} is neither a sweep nor an "
                                      f"experiment holding one that logged its sweep file; "
                                      f"give the target sweep with --sweep FILE"])
    space = validate_data(SearchSpace, space_data, f"{source}:search_space.json")
    return logged, validate_data(SweepConfig, logged, f"{source}:sweep.json"), space, None


def run_propose(uri: str, sources: list[str], proxies: list[str], n: int, out: Path, *,
                objectives: dict[str, str] | None = None, constraints: str | None = None,
                sweep_file: Path | None = None, seed: int = 0) -> ProposeResult:
    proxy_refs = [parse_proxy(text) for text in proxies]  # bad options first, before reading
    data, sweep, space, given = target_sweep(uri, sources[0], sweep_file)
    objectives = objectives or dict(sweep.search.objectives)
    bounds = parse_bounds(constraints, objectives) if constraints else sweep.search.constraints
    names = list(objectives)
    records = [r for s in sources for r in source_records(uri, s, names, 1.0)]
    for ref, fidelity in proxy_refs:
        records += source_records(uri, ref, names, fidelity)
    surrogate = Surrogate(space, names, records, seed=seed)
    target = [r for r in records if r.fidelity >= 1.0]
    measured = np.array([[r.values[o] for o in names] for r in target]).reshape(-1, len(names))
    quality = cross_validate(space, names, records, seed=seed)
    exclude = {point_key(r.point) for r in target}
    n_explore = exploring(quality, n)
    proposals = propose(surrogate, space, objectives, n - n_explore, measured=measured,
                        constraints=bounds, seed=seed, exclude=exclude,
                        tried=[r.point for r in target])
    proposals += explore(surrogate, space, objectives, n_explore, seed=seed, exclude=exclude,
                         avoid=[r.point for r in target] + [p.point for p in proposals])
    write_sweep(data, proposals, out, objectives, sweep_file=given, space=space,
                constraints=bounds)
    try:
        load_sweep(out)  # ready means valid: the file is refused here, not at `sftmix run`
    except ConfigError:
        out.unlink()
        raise
    return ProposeResult(proposals, quality, objectives, out, records)


def exploring(quality: dict[str, dict], n: int) -> int:
    """How many of `n` proposals explore instead of exploiting the fit: all of them when the
    surrogate predicts no ability better than the data's mean (cross-validated), half when
    some, none when it knows more than the mean for every ability."""
    blind = [o for o, q in quality.items() if q["cv_rmse"] is None or q["data_std"] is None
             or q["cv_rmse"] >= q["data_std"]]
    if len(blind) == len(quality):
        return n
    return n // 2 if blind else 0


def write_sweep(data: dict, proposals: list[Proposal], out: Path, objectives: dict[str, str], *,
                sweep_file: Path | None, space: SearchSpace,
                constraints: dict[str, float] | None = None) -> None:
    data = {**data, "search": dict(data.get("search") or {})}
    search = data["search"]
    search["warm_start"] = [p.point for p in proposals]
    search["num_samples"] = max(int(search.get("num_samples") or 0), len(proposals))
    search["objectives"] = dict(objectives)
    if constraints:  # the bounds the proposals were weighed by hold for the sweep too
        search["constraints"] = dict(constraints)
    if search.get("algorithm") == "grid":  # a grid has no sampler to warm-start
        search["algorithm"] = "surrogate"
    data["name"] = f"{data['name']}_proposed"
    out.parent.mkdir(parents=True, exist_ok=True)
    if sweep_file is not None:
        space_path = resolve_relative(search["space"], Path(sweep_file))
        search["space"] = str(space_path if Path(search["space"]).exists() or not
                              space_path.exists() else space_path.resolve())
    else:  # the space the source sweep logged, written beside the new sweep file
        space_out = out.with_name(f"{out.stem}.space.yaml")
        space_out.write_text(yaml.safe_dump(space.model_dump(mode="json", exclude_none=True),
                                            sort_keys=False))
        search["space"] = space_out.name
    out.write_text("# Written by `sftmix propose`: search.warm_start holds the proposals, "
                   "tried first.\n" + yaml.safe_dump(_plain(data), sort_keys=False))


def quality_table(quality: dict[str, dict]) -> tuple[list[str], list[list[str]]]:
    """The surrogate's quality per ability, as a table's header and rows."""
    def num(value) -> str:
        return "—" if value is None else f"{value:.3f}"

    header = ["ability", "trials", "CV RMSE", "95% coverage", "data std", "seed noise",
              "interval noise", "GP noise", "verdict"]
    return header, [[o, f"{q['n']} (+{q['n_proxy']} proxy)",
                     *[num(q[k]) for k in ("cv_rmse", "coverage95", "data_std",
                                           "seed_noise_sd", "interval_noise_sd", "gp_noise_sd")],
                     verdict(q)] for o, q in quality.items()]


def _plain(data):
    """JSON-shaped data with None values dropped, so the file reads like a hand-written one."""
    if isinstance(data, dict):
        return {k: _plain(v) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    return data


__all__ = ["ConfigError", "ProposeResult", "RunsError", "parse_bounds", "parse_proxy",
           "quality_table", "run_propose"]
