"""A surrogate of the lab's ability landscape, fitted to measured lab trials, so a search benchmark
can run hundreds of trials in seconds instead of hours.

Per strategy variant (strategy, k) and per ability, a thin-plate-spline RBF (scipy) over the
mixture's coordinates: the math and code shares (general is the rest) and the log amount scaled to
[0, 1]. The measurements are single-seed and noisy, so the spline smooths; its smoothing is the one
with the smallest leave-one-out error, and that error is printed beside the spread of the data, so
the reader can judge how much of the landscape is signal.

Seed repeats: a grid measured with several training seeds per point (`sweeps/landscape_lab.yaml`
runs three) is averaged per point before the spline is fitted, so the benchmarks score searches
against the seed-averaged truth, not one noisy draw; the spread between the seeds is the
per-point noise estimate (`Landscape.noise`, printed by `noise_lines`).

The lab version: the data file names the lab it was measured on (`lab`: the base model's content
key, the lab data generators' digest and the sweep's settings, `train/lab_base.lab_version`).
Loading compares it with the current lab's and refuses another lab's data (exit 2, naming both
versions and the command that measures it again) unless `allow_stale_lab` is given; then every
benchmark warns loudly that its figures are not the current lab's. Re-measure (hours on 2 cores):

    sftmix run sweeps/landscape_lab.yaml && python benchmarks/export_landscape.py
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LAB_SWEEP = ROOT / "sweeps" / "landscape_lab.yaml"
REMEASURE = "sftmix run sweeps/landscape_lab.yaml && python benchmarks/export_landscape.py"
SMOOTHINGS = (0.0, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)


def variant(strategy: str, k) -> str:
    return f"dmt(k={k:g})" if strategy == "dmt" else strategy


def current_lab() -> dict:
    """The current lab's version (`train/lab_base.lab_version` of the landscape sweep)."""
    sys.path.insert(0, str(ROOT))
    from sftmix_ray.config import load_sweep
    from sftmix_ray.train.lab_base import lab_version

    return lab_version(load_sweep(LAB_SWEEP)[0])


def stale_lab(measured: dict | None, current: dict) -> str | None:
    """Why data measured on lab `measured` is not the current lab's (None: it is)."""
    if measured is not None and measured.get("version") == current["version"]:
        return None
    was = "no lab version (measured before the data file named its lab)" if measured is None \
        else f"lab {measured.get('version')} (base model {measured.get('base_key')})"
    return (f"the landscape was measured on {was}; the current lab is {current['version']} "
            f"(base model {current['base_key']}). Measure it again: {REMEASURE}")


def point_of(row: dict, domains: list[str]) -> tuple:
    """What makes two trials the same grid point (their seeds aside)."""
    return (tuple(round(float(row["ratio"].get(d, 0.0)), 6) for d in domains), row["amount"],
            row["strategy"], row["k"])


@dataclass
class Landscape:
    domains: list[str]
    objectives: list[str]
    amount_range: tuple[int, int]
    rows: list[dict]  # measured trials: ratio, amount, strategy, k, seed, and every objective
    lab: dict | None = None  # the lab it was measured on (None: before files named it)
    planned: int | None = None  # the sweep's trials in all (None: not recorded)
    stale: str | None = None  # why it is not the current lab's (None: it is)
    _points: list[dict] = field(default=None, repr=False)

    @classmethod
    def load(cls, path: Path, allow_stale_lab: bool = False, check_lab: bool = True
             ) -> Landscape:
        data = json.loads(Path(path).read_text())
        land = cls(data["domains"], data["objectives"], tuple(data["amount_range"]),
                   data["trials"], data.get("lab"), data.get("planned"))
        land.stale = stale_lab(land.lab, current_lab()) if check_lab else None
        if land.stale and not allow_stale_lab:
            print(f"{path}: {land.stale}; or pass --allow-stale-lab to run on it anyway",
                  file=sys.stderr)
            raise SystemExit(2)
        if land.stale:
            bar = "!" * 78
            print(f"{bar}\nWARNING (--allow-stale-lab): {land.stale}\nEvery figure below is "
                  f"that older lab's, not the current lab's.\n{bar}", file=sys.stderr,
                  flush=True)
        return land

    def variants(self) -> dict[str, tuple[str, float | None]]:
        return {variant(r["strategy"], r["k"]): (r["strategy"], r["k"]) for r in self.rows}

    def points(self) -> list[dict]:
        """One row per grid point: its scores averaged over its seed repeats, with `n` (the
        repeats) and `sd` (per objective, their standard deviation; None with one seed)."""
        if self._points is None:
            groups: dict[tuple, list[dict]] = {}
            for r in self.rows:
                groups.setdefault(point_of(r, self.domains), []).append(r)
            self._points = []
            for members in groups.values():
                first = members[0]
                row = {k: first[k] for k in ("ratio", "amount", "strategy", "k")}
                for o in self.objectives:
                    v = np.array([m[o] for m in members], dtype=float)
                    row[o] = float(v.mean())
                    row.setdefault("sd", {})[o] = float(v.std(ddof=1)) if len(v) > 1 else None
                row["n"] = len(members)
                row["train_seconds"] = first.get("train_seconds")
                self._points.append(row)
        return self._points

    def noise(self) -> dict[str, float | None]:
        """Per objective, the pooled standard deviation between seed repeats of one point (one
        trial's noise); None when no point was repeated."""
        out = {}
        for o in self.objectives:
            ss = dof = 0.0
            for p in self.points():
                if p["n"] > 1:
                    ss, dof = ss + p["sd"][o] ** 2 * (p["n"] - 1), dof + p["n"] - 1
            out[o] = math.sqrt(ss / dof) if dof else None
        return out

    def noise_lines(self) -> list[str]:
        """The per-point noise estimate, one line per objective."""
        repeated = [p for p in self.points() if p["n"] > 1]
        if self.planned and len(self.rows) < self.planned:
            seeds = sorted({r.get("seed") for r in self.rows}, key=lambda s: (s is None, s))
            per = ", ".join(f"seed {s}: {sum(r.get('seed') == s for r in self.rows)}"
                            for s in seeds)
            head = [f"measured {len(self.rows)} of the sweep's {self.planned} trials ({per}); "
                    f"`sftmix resume` completes it, then export again"]
        else:
            head = []
        if not repeated:
            return head + ["noise: no grid point was measured with more than one seed (no "
                           "estimate; the searches see the spline, noiseless)"]
        seeds = sorted({p["n"] for p in repeated})
        lines = head + [f"noise between seeds ({len(repeated)} of {len(self.points())} grid "
                        f"points repeated, {'/'.join(map(str, seeds))} seeds): one trial's "
                        f"standard deviation"]
        for o, pooled in self.noise().items():
            sds = np.array([p["sd"][o] for p in repeated])
            worst = repeated[int(np.argmax(sds))]
            where = ", ".join(f"{d} {worst['ratio'].get(d, 0):.2f}" for d in self.domains)
            lines.append(f"  {o:>8}: pooled {pooled:.3f}; per point median {np.median(sds):.3f}, "
                         f"largest {sds.max():.3f} ({where}, {worst['amount']} samples, "
                         f"{variant(worst['strategy'], worst['k'])})")
        return lines


class Surrogate:
    def __init__(self, landscape: Landscape):
        self.land = landscape
        lo, hi = landscape.amount_range
        self._log_lo, self._log_span = math.log(lo), math.log(hi) - math.log(lo)
        self.models, self.fit_report = {}, []
        for name in landscape.variants():
            rows = [r for r in landscape.points() if variant(r["strategy"], r["k"]) == name]
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


def observe(truth: list[float], noise: dict[str, float | None], objectives: list[str],
            rng: np.random.Generator) -> list[float]:
    """What one trial would measure at a point whose seed-averaged score is `truth`: a draw with
    the seed noise of each objective (none where it was not measured), clipped to [0, 1]."""
    return [float(np.clip(v + rng.normal(0.0, noise.get(o) or 0.0), 0.0, 1.0))
            for v, o in zip(truth, objectives)]
