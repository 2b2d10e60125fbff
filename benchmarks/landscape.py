"""A surrogate of the lab's ability landscape, fitted to measured lab trials, so a search benchmark
can run hundreds of trials in seconds instead of hours.

Per strategy variant (strategy, k) and per ability, a thin-plate-spline RBF (scipy) over the
mixture's coordinates: the math and code shares (general is the rest) and the log amount scaled to
[0, 1]. The measurements are single-seed and noisy, so the spline smooths; its smoothing is the one
with the smallest leave-one-out error, and that error is printed beside the spread of the data, so
the reader can judge how much of the landscape is signal.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SMOOTHINGS = (0.0, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)


def variant(strategy: str, k) -> str:
    return f"dmt(k={k:g})" if strategy == "dmt" else strategy


@dataclass
class Landscape:
    domains: list[str]
    objectives: list[str]
    amount_range: tuple[int, int]
    rows: list[dict]  # measured trials: ratio, amount, strategy, k, and every objective

    @classmethod
    def load(cls, path: Path) -> Landscape:
        data = json.loads(Path(path).read_text())
        return cls(data["domains"], data["objectives"], tuple(data["amount_range"]), data["trials"])

    def variants(self) -> dict[str, tuple[str, float | None]]:
        return {variant(r["strategy"], r["k"]): (r["strategy"], r["k"]) for r in self.rows}


class Surrogate:
    def __init__(self, landscape: Landscape):
        self.land = landscape
        lo, hi = landscape.amount_range
        self._log_lo, self._log_span = math.log(lo), math.log(hi) - math.log(lo)
        self.models, self.fit_report = {}, []
        for name in landscape.variants():
            rows = [r for r in landscape.rows if variant(r["strategy"], r["k"]) == name]
            X = np.array([self._coords(r["ratio"], r["amount"]) for r in rows])
            for obj in landscape.objectives:
                y = np.array([r[obj] for r in rows], dtype=float)
                smoothing, loo = _best_smoothing(X, y)
                self.models[name, obj] = _rbf(X, y, smoothing)
                self.fit_report.append({"variant": name, "objective": obj, "n": len(rows),
                                        "smoothing": smoothing, "loo_rmse": loo,
                                        "data_std": float(y.std())})

    def _coords(self, ratio: dict, amount: float) -> list[float]:
        total = sum(ratio.get(d, 0.0) for d in self.land.domains)
        shares = [ratio.get(d, 0.0) / total for d in self.land.domains[:-1]]
        return shares + [(math.log(amount) - self._log_lo) / self._log_span]

    def __call__(self, point: dict) -> list[float]:
        name = variant(point["strategy"], point.get("k"))
        x = np.array([self._coords(point["ratio"], point["amount"])])
        return [float(np.clip(self.models[name, obj](x)[0], 0.0, 1.0))
                for obj in self.land.objectives]


def _rbf(X, y, smoothing):
    from scipy.interpolate import RBFInterpolator

    return RBFInterpolator(X, y, kernel="thin_plate_spline", smoothing=smoothing, degree=1)


def _best_smoothing(X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    best = None
    for s in SMOOTHINGS:
        errors = []
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            try:
                errors.append(float(_rbf(X[keep], y[keep], s)(X[i:i + 1])[0] - y[i]))
            except (np.linalg.LinAlgError, ValueError):
                errors = None
                break
        if errors is None:
            continue
        rmse = float(np.sqrt(np.mean(np.square(errors))))
        if best is None or rmse < best[1]:
            best = (s, rmse)
    return best
