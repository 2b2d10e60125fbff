"""One row per trial (or per repeated point, with mean and spread): what the plots, the findings
and the report read. Runs from `sftmix run` carry params ratio.* / fractions.* / counts.*,
strategy, k, seed and metrics samples_<domain>; runs from elsewhere need only the objectives.
Beside an objective X a run may log X_ci_low, X_ci_high (its 95% interval) and X_n (evaluation
problems); rows carry them, and rows of older runs without them carry no interval at all."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from ..config.abilities import score_range
from ..pareto import dominates_beyond_noise, pareto_mask, pareto_ranks
from .stats import mean_interval

# Params that differ between repeats of one point, not between points.
REPEAT_KEYS = {"seed"}


def _num(value):
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


@dataclass
class Row:
    run_ids: list[str]
    name: str
    strategy: str | None
    k: float | None
    samples: dict[str, float]          # per domain, as trained (0 when absent)
    shares: dict[str, float]           # per-domain share of the samples
    params: dict[str, str]
    scores: dict[str, float]           # objective -> mean
    spread: dict[str, float] = field(default_factory=dict)  # objective -> std (repeats only)
    # objective -> (95% low, 95% high, evaluation problems); absent when a run logged none
    intervals: dict[str, tuple[float, float, int]] = field(default_factory=dict)
    front: bool = False
    within_noise: bool = False  # off the front, but no front point beats it beyond the intervals
    rank: int | None = None

    @property
    def total(self) -> float:
        return sum(self.samples.values())

    @property
    def n(self) -> int:
        return len(self.run_ids)

    def domains_used(self) -> list[str]:
        return [d for d, n in self.samples.items() if n > 0]


def domains_of(runs) -> list[str]:
    names = set()
    for r in runs:
        names |= {k.removeprefix("samples_") for k in r.metrics if k.startswith("samples_")}
        for kind in ("ratio.", "fractions.", "counts."):
            names |= {k.removeprefix(kind) for k in r.params if k.startswith(kind)}
    return sorted(names)


def point_key(run) -> tuple:
    # weights_final.* / weights_mean.*: what an online trial's weights became, not its point
    return tuple(sorted((k, v) for k, v in run.params.items()
                        if k not in REPEAT_KEYS and not k.startswith("weights_")))


def _interval(run, objective: str) -> tuple[float, float, int] | None:
    low, high, n = (_num(run.metrics.get(f"{objective}_{part}"))
                    for part in ("ci_low", "ci_high", "n"))
    return None if None in (low, high, n) else (low, high, int(n))


def _intervals(members, objectives) -> dict[str, tuple[float, float, int]]:
    """Per objective, the interval of the mean of the repeats (stats.mean_interval: the
    problem-sampling half-widths averaged, since seeds share the evaluation problems, widened
    by the seed-to-seed t interval); none when any repeat logged no interval."""
    out = {}
    for o in objectives:
        combined = mean_interval([float(m.metrics[o]) for m in members],
                                 [_interval(m, o) for m in members], score_range(o))
        if combined is not None:
            out[o] = combined
    return out


def build_rows(runs, objectives: dict[str, str]) -> list[Row]:
    """Finished runs with every objective, grouped by point: repeats (other seeds) become one row
    with the mean, the standard deviation and the interval of the mean."""
    domains = domains_of(runs)
    usable = [r for r in runs if r.status == "FINISHED" and
              all(_num(r.metrics.get(o)) is not None for o in objectives)]
    groups: dict[tuple, list] = {}
    for r in usable:
        groups.setdefault(point_key(r), []).append(r)
    rows = []
    for members in groups.values():
        first = members[0]
        samples = {d: _num(first.metrics.get(f"samples_{d}")) or 0.0 for d in domains}
        total = sum(samples.values())
        scores = {o: statistics.fmean(float(m.metrics[o]) for m in members) for o in objectives}
        spread = {o: statistics.stdev([float(m.metrics[o]) for m in members])
                  for o in objectives} if len(members) > 1 else {}
        rows.append(Row(
            run_ids=[m.run_id for m in members], name=first.name,
            strategy=first.params.get("strategy"), k=_num(first.params.get("k")),
            samples=samples, shares={d: (n / total if total else 0.0) for d, n in samples.items()},
            params=dict(first.params), scores=scores, spread=spread,
            intervals=_intervals(members, objectives)))
    _mark_front(rows, objectives)
    return sorted(rows, key=lambda r: (r.rank or 99, r.name))


def _mark_front(rows: list[Row], objectives: dict[str, str]) -> None:
    """The front over the rows' means: with repeats, a point is judged by its average."""
    import numpy as np

    if not rows:
        return
    values = np.array([[r.scores[o] for o in objectives] for r in rows])
    up = [d == "max" for d in objectives.values()]
    for r, front, rank in zip(rows, pareto_mask(values, up), pareto_ranks(values, up)):
        r.front, r.rank = bool(front), int(rank)
    front = [r for r in rows if r.front]
    for r in rows:
        r.within_noise = not r.front and not any(_beats(f, r, objectives) for f in front)


def _beats(a: Row, b: Row, objectives: dict[str, str]) -> bool:
    """`a` dominates `b` beyond noise (pareto.dominates_beyond_noise) on their 95% bounds (the
    scores themselves where a row has no interval)."""
    def ends(row: Row, o: str) -> tuple[float, float]:
        low, high, _ = row.intervals.get(o, (row.scores[o], row.scores[o], 0))
        return (low, high) if objectives[o] == "max" else (high, low)  # (worst, best)

    a_ends, b_ends = [ends(a, o) for o in objectives], [ends(b, o) for o in objectives]
    return dominates_beyond_noise([w for w, _ in a_ends], [b for _, b in a_ends],
                                  [w for w, _ in b_ends], [b for _, b in b_ends],
                                  [d == "max" for d in objectives.values()])
