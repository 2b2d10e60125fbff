"""The answer to a sweep: the non-dominated runs over any objectives (each max or min), the
non-dominated sorting ranks, and the hypervolume against a stated reference point."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..pareto import default_reference, hypervolume_of, pareto_mask, pareto_ranks


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


def analyze(runs, objectives: dict[str, str], reference: list[float] | None = None
            ) -> FrontAnalysis:
    names = list(objectives)
    maximize = [objectives[n] == "max" for n in names]
    usable, missing = [], []
    for r in runs:
        vals = [r.metrics.get(n) for n in names]
        if r.status in ("FINISHED", None) and all(isinstance(v, (int, float)) and math.isfinite(v)
                                                   for v in vals):
            usable.append((r.run_id, vals))
        else:
            missing.append(r.run_id)
    values = np.array([v for _, v in usable], dtype=float).reshape(len(usable), len(names))
    if reference is not None and len(reference) != len(names):
        raise ValueError(f"--reference: {len(reference)} values for {len(names)} objectives")
    if not usable:
        return FrontAnalysis(objectives, [], values, np.zeros(0, bool), np.zeros(0, int),
                             list(reference or []), 0.0, missing)
    ref = list(reference) if reference is not None else default_reference(values, maximize)
    hv = hypervolume_of(values, maximize, ref)
    return FrontAnalysis(objectives, [u for u, _ in usable], values,
                         pareto_mask(values, maximize), pareto_ranks(values, maximize), ref, hv,
                         missing)
