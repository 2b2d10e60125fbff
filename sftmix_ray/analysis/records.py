"""Finished trials as plain records for the surrogate: the trial's point (its wire form), its
objective values, the fidelity it ran at and its seed. Read from MLflow runs (any object with
`params`, `metrics`, `status`, `run_id`, as tracking hands them over) or from Optuna trials; the
features a regression sees are computed from these by `surrogate.Encoder`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..config.point import MIXTURE_KINDS, TrialPoint, online_from_params

TARGET_FIDELITY = 1.0


@dataclass
class Record:
    point: dict                      # TrialPoint wire form
    values: dict[str, float]         # objective name -> score
    fidelity: float = TARGET_FIDELITY  # 1 = the target setting; a proxy's is below
    seed: int | None = None
    run_id: str = ""
    source: str = ""                 # which sweep or experiment it came from
    intervals: dict[str, float] = field(default_factory=dict)  # objective -> CI half-width

    @property
    def trial_point(self) -> TrialPoint:
        return TrialPoint.from_wire(self.point)


def _float(value):
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def point_from_params(params: dict) -> dict:
    """A run's MLflow params back to a point's wire form, searched hyperparameters and the
    sequential order included (the surrogate needs every coordinate a trial was given)."""
    point: dict = {"strategy": params.get("strategy") or "?"}
    for kind in MIXTURE_KINDS:
        values = {k.split(".", 1)[1]: float(v) for k, v in params.items()
                  if k.startswith(f"{kind}.")}
        if values:
            point[kind] = values
    if params.get("amount"):
        point["amount"] = int(float(params["amount"]))
    if _float(params.get("k")) is not None:
        point["k"] = float(params["k"])
    if params.get("order"):
        point["order"] = params["order"].split(">")
    train = {k.split(".", 1)[1]: float(v) for k, v in params.items() if k.startswith("train.")}
    if train:
        point["train"] = {k: int(v) if v == int(v) else v for k, v in train.items()}
    online = online_from_params(params)
    if online:
        point["online"] = online
    return point


def records_from_runs(runs, objectives: list[str], *, fidelity: float = TARGET_FIDELITY,
                      source: str = "") -> list[Record]:
    """Finished runs that carry every objective and a strategy (sftmix trial runs); the rest
    (failed, pruned, parent runs, runs of other tools) are left out."""
    out = []
    for r in runs:
        if r.status not in ("FINISHED", None) or not r.params.get("strategy"):
            continue
        values = {o: _float(r.metrics.get(o)) for o in objectives}
        if any(v is None for v in values.values()):
            continue
        half = {}
        for o in objectives:
            lo, hi = _float(r.metrics.get(f"{o}_ci_low")), _float(r.metrics.get(f"{o}_ci_high"))
            if lo is not None and hi is not None:
                half[o] = (hi - lo) / 2
        seed = _float(r.params.get("seed"))
        out.append(Record(point_from_params(r.params), values, fidelity,
                          None if seed is None else int(seed), r.run_id, source, half))
    return out


def point_key(point: dict, *, with_amount: bool = True) -> tuple:
    """What makes two trials the same mixture (seed left out): shares rounded to 0.01, so
    points that differ only by float noise after a round trip through MLflow match."""
    p = TrialPoint.from_wire(point)
    mix = []
    for kind in MIXTURE_KINDS:
        values = getattr(p, kind)
        if values:
            total = sum(values.values()) if kind == "ratio" else 1.0
            mix.append((kind, tuple(sorted((d, round(v / total, 2)) for d, v in values.items()
                                           if v))))
    online = tuple(sorted((k, round(v, 6) if isinstance(v, float) else v)
                          for k, v in (p.online or {}).items()))
    return (p.strategy, p.k, tuple(p.order or ()), tuple(mix),
            p.amount if with_amount else None, tuple(sorted((p.train or {}).items())), online)
