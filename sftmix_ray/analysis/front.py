"""The answer to a sweep: the non-dominated runs over any objectives (each max or min), the
non-dominated sorting ranks, and the hypervolume against a stated reference point."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..pareto import (
    default_reference,
    dominates_beyond_noise,
    hypervolume_of,
    pareto_mask,
    pareto_ranks,
)


@dataclass
class FrontAnalysis:
    objectives: dict[str, str]
    run_ids: list[str]                      # the runs that carry every objective
    values: np.ndarray                      # (n, objectives)
    on_front: np.ndarray                    # bool
    ranks: np.ndarray                       # 1 = front
    reference: list[float]
    hypervolume: float
    missing: list[str] = field(default_factory=list)  # runs lacking an objective
    by: str = "mean"                        # ranked by scores, or by their pessimistic bounds
    within_noise: list[str] = field(default_factory=list)  # off the front, not beaten beyond
                                                            # the intervals by any front member

    def front_ids(self) -> list[str]:
        return [r for r, f in zip(self.run_ids, self.on_front) if f]


def parse_objectives(text: str) -> dict[str, str]:
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, direction = part.partition(":")
        direction = direction or "max"
        if direction not in ("max", "min"):
            raise ValueError(f"--objectives: {part!r}: the direction must be max or min")
        out[name] = direction
    if not out:
        raise ValueError("--objectives: give at least one, e.g. math,code:max,loss:min")
    return out


BY = ("mean", "lower")  # rank by the score, or by its pessimistic bound (low for max, high for min)


def _bound(run, name: str, direction: str, side: str):
    """The score itself, or an end of its interval: `worst` (low for a maximized objective,
    high for a minimized one) or `best`; None when the run has no interval for it."""
    if side == "mean":
        return run.metrics.get(name)
    low_end = (side == "worst") == (direction == "max")
    return run.metrics.get(f"{name}_ci_low" if low_end else f"{name}_ci_high")


def _finite(values) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def analyze(runs, objectives: dict[str, str], reference: list[float] | None = None,
            by: str = "mean") -> FrontAnalysis:
    """The front over each run's scores (`by="mean"`) or over their pessimistic bounds
    (`by="lower"`: a run ranks by what its interval guarantees)."""
    if by not in BY:
        raise ValueError(f"--by: {by!r} is not one of {', '.join(BY)}")
    names = list(objectives)
    maximize = [objectives[n] == "max" for n in names]
    side = "worst" if by == "lower" else "mean"
    usable, missing = [], []
    for r in runs:
        vals = [_bound(r, n, objectives[n], side) for n in names]
        if r.status in ("FINISHED", None) and _finite(vals):
            usable.append((r, vals))
        else:
            missing.append(r.run_id)
    values = np.array([v for _, v in usable], dtype=float).reshape(len(usable), len(names))
    if reference is not None and len(reference) != len(names):
        raise ValueError(f"--reference: {len(reference)} values for {len(names)} objectives")
    if not usable:
        return FrontAnalysis(objectives, [], values, np.zeros(0, bool), np.zeros(0, int),
                             list(reference or []), 0.0, missing, by=by)
    ref = list(reference) if reference is not None else default_reference(values, maximize)
    on_front = pareto_mask(values, maximize)
    return FrontAnalysis(objectives, [r.run_id for r, _ in usable], values, on_front,
                         pareto_ranks(values, maximize), ref,
                         hypervolume_of(values, maximize, ref), missing, by=by,
                         within_noise=_within_noise([r for r, _ in usable], on_front,
                                                    objectives))


def _within_noise(runs, on_front, objectives: dict[str, str]) -> list[str]:
    """Runs off the front that no front member beats beyond the intervals
    (pareto.dominates_beyond_noise: better beyond noise somewhere, worse beyond noise nowhere).
    Runs without intervals are compared on their scores."""
    def at(run, side):
        vals = [_bound(run, n, d, side) for n, d in objectives.items()]
        return vals if _finite(vals) else [run.metrics[n] for n in objectives]

    maximize = [d == "max" for d in objectives.values()]
    front = [r for r, f in zip(runs, on_front) if f]
    out = []
    for run, f in zip(runs, on_front):
        if f:
            continue
        beaten = any(dominates_beyond_noise(at(m, "worst"), at(m, "best"), at(run, "worst"),
                                            at(run, "best"), maximize) for m in front)
        if not beaten:
            out.append(run.run_id)
    return out
