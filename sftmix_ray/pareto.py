"""The Pareto front over abilities: which trials no other trial beats on every objective."""

from __future__ import annotations

import math

import numpy as np


def pareto_mask(points: np.ndarray, maximize: list[bool]) -> np.ndarray:
    """True for non-dominated rows. Duplicated points are all kept (weak dominance does not
    remove a tie), so two trials with equal scores are both on the front."""
    import moocore

    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or points.shape[1] != len(maximize):
        raise ValueError(f"points must be (n, {len(maximize)}), got {points.shape}")
    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(moocore.is_nondominated(points, maximise=maximize, keep_weakly=True))


def dominates(a: list[float], b: list[float], maximize: list[bool]) -> bool:
    """`a` is at least as good as `b` on every objective and better on one."""
    better = [(x >= y) if up else (x <= y) for x, y, up in zip(a, b, maximize)]
    strictly = [(x > y) if up else (x < y) for x, y, up in zip(a, b, maximize)]
    return all(better) and any(strictly)


def dominates_beyond_noise(a_worst: list[float], a_best: list[float], b_worst: list[float],
                           b_best: list[float], maximize: list[bool]) -> bool:
    """Dominance read through 95% intervals: `a` is better than `b` beyond noise on some
    objective (a's worst end past b's best) and worse beyond noise on none (a's best end never
    short of b's worst). Asking a to be better beyond noise on *every* objective would let one
    objective where both sit at the ceiling (code at 1.0) make every point look "within noise"."""
    def past(x, y, up):
        return x > y if up else x < y

    better = any(past(aw, bb, up) for aw, bb, up in zip(a_worst, b_best, maximize))
    worse = any(past(bw, ab, up) for bw, ab, up in zip(b_worst, a_best, maximize))
    return better and not worse


def front_of(rows: list[dict], objectives: dict[str, str]) -> list[dict]:
    """Rows (dicts with the objective keys) on the front; rows missing an objective are left out."""
    names = list(objectives)
    usable = [r for r in rows if all(isinstance(r.get(n), (int, float)) and
                                      math.isfinite(r[n]) for n in names)]
    if not usable:
        return []
    mask = pareto_mask(np.array([[r[n] for n in names] for r in usable]),
                       [objectives[n] == "max" for n in names])
    return [r for r, keep in zip(usable, mask) if keep]


def hypervolume_of(points: np.ndarray, maximize: list[bool], ref: list[float]) -> float:
    """The hypervolume (moocore) of (n, objectives) points against a reference point."""
    import moocore

    points = np.asarray(points, dtype=float)
    if len(points) == 0:
        return 0.0
    return float(moocore.hypervolume(points, ref=list(ref), maximise=list(maximize)))


def hypervolume(rows: list[dict], objectives: dict[str, str], ref: dict[str, float]) -> float:
    names = list(objectives)
    pts = np.array([[r[n] for n in names] for r in rows], dtype=float).reshape(len(rows),
                                                                                len(names))
    return hypervolume_of(pts, [objectives[n] == "max" for n in names], [ref[n] for n in names])


def pareto_ranks(points: np.ndarray, maximize: list[bool]) -> np.ndarray:
    """Non-dominated sorting: 1 for the front, 2 for the front once that is removed, and so on."""
    import moocore

    points = np.asarray(points, dtype=float)
    if len(points) == 0:
        return np.zeros(0, dtype=int)
    return np.asarray(moocore.pareto_rank(points, maximise=maximize)) + 1


def default_reference(points: np.ndarray, maximize: list[bool]) -> list[float]:
    """A reference point every run dominates: 0 for a maximized score that is never negative
    (abilities), else the worst value seen; for a minimized objective, the worst value seen."""
    ref = []
    for j, up in enumerate(maximize):
        col = points[:, j]
        ref.append((0.0 if col.min() >= 0 else float(col.min())) if up else float(col.max()))
    return ref
