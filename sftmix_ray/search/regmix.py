"""RegMix (Liu et al. 2024, "RegMix: Data Mixture as Regression for Language Model
Pre-training"): train many small proxies on random Dirichlet mixtures, fit a regression from the
mixture to each score, and run at the target the average of the top-k mixtures the regression
predicts best, over many simulated candidates. The search a team would otherwise pick, so the
benchmarks run it beside ours at the same number of target trials.

The regression: scikit-learn's `HistGradientBoostingRegressor`, per ability. RegMix fits
LightGBM; HistGradientBoosting is the same histogram gradient-boosted trees (modelled on
LightGBM), already a dependency (the surrogate's GP comes from scikit-learn), where LightGBM would
be a new compiled dependency with an OpenMP runtime for every install. Its leaves may hold as
few as two trials: a proxy sweep has tens of trials, not RegMix's hundreds.

Several abilities: RegMix optimizes one validation loss. Each proposal here is the top-k average
under one weighting of the abilities (each scaled to its predicted range over the candidates):
the first weighs them equally, the next are Dirichlet draws, so a budget of proposals spreads
along the front instead of repeating one compromise.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from ..analysis.records import Record, point_key
from ..analysis.surrogate import Encoder
from ..config.point import TrialPoint
from ..config.space import SearchSpace
from .proposals import random_points

CANDIDATES = 10_000  # simulated mixtures the regression ranks
TOP_K = 16           # best-predicted mixtures averaged into one proposal
MIN_LEAF = 2


def dirichlet_points(space: SearchSpace, n: int, rng: np.random.Generator,
                     concentration: float = 1.0) -> list[dict]:
    """`n` random points whose ratios are Dirichlet(`concentration`) draws (1: uniform on the
    simplex, below 1: nearer its corners), amounts and strategy variants drawn as any random
    point's. RegMix's proxy mixtures, and the candidates it ranks."""
    points = random_points(space, n, rng)
    if space.mixture != "ratio" or space.ratio_space.kind != "simplex":
        return points
    shares = rng.dirichlet(np.full(len(space.domains), concentration), size=n)
    return [TrialPoint.from_wire({**p, "ratio": dict(zip(space.domains, s.tolist()))}).to_wire()
            for p, s in zip(points, shares)]


class RegMix:
    """Per ability, gradient-boosted trees from a point's coordinates (the surrogate's encoder:
    shares, log amount, strategy) to its score, fitted to the proxy records."""

    def __init__(self, space: SearchSpace, objectives: list[str], records: list[Record],
                 seed: int = 0):
        from sklearn.ensemble import HistGradientBoostingRegressor

        if len(records) < 2:
            raise ValueError("RegMix needs at least two finished proxy trials")
        self.space, self.objectives = space, list(objectives)
        self.encoder = Encoder(space, records)
        X = self.encoder.matrix([r.point for r in records])
        with _one_thread():
            self.models = {o: HistGradientBoostingRegressor(
                max_iter=100, learning_rate=0.1, max_leaf_nodes=8, min_samples_leaf=MIN_LEAF,
                random_state=seed).fit(X, np.array([r.values[o] for r in records], dtype=float))
                for o in self.objectives}

    def predict(self, points: list[dict]) -> np.ndarray:
        """(points, objectives) predicted scores."""
        X = self.encoder.matrix(points)
        with _one_thread():
            return np.column_stack([self.models[o].predict(X) for o in self.objectives])


def regmix_propose(model: RegMix, objectives: dict[str, str], n: int, *,
                   candidates: int = CANDIDATES, top_k: int = TOP_K, seed: int = 0,
                   exclude: set | None = None) -> list[dict]:
    """`n` distinct points: each the average of the `top_k` candidates best under one weighting
    of the abilities (equal weights first)."""
    rng = np.random.default_rng(seed)
    pool = dirichlet_points(model.space, candidates, rng)
    names = list(model.objectives)
    sign = np.array([1.0 if objectives[o] == "max" else -1.0 for o in names])
    pred = model.predict(pool) * sign
    span = np.maximum(pred.max(axis=0) - pred.min(axis=0), 1e-12)
    scaled = (pred - pred.min(axis=0)) / span
    seen, out = set(exclude or ()), []
    weights = np.full(len(names), 1.0 / len(names))
    for _ in range(20 * n):  # a weighting whose average repeats an earlier one gives nothing
        if len(out) == n:
            break
        top = np.argsort(-(scaled @ weights), kind="stable")[:top_k]
        point = average_points(model.space, [pool[i] for i in top])
        if point_key(point) not in seen:
            seen.add(point_key(point))
            out.append(point)
        weights = rng.dirichlet(np.ones(len(names)))
    return out


def average_points(space: SearchSpace, points: list[dict]) -> dict:
    """RegMix's top-k average: the ratios' mean and the amounts' geometric mean (snapped to the
    space's choices); the strategy variant is the one most of them share, and every other
    setting is the best point's (`points[0]`). Per-domain fractions and counts are not averaged
    (a grid of choices has no mean in it): the best point stands."""
    best = dict(points[0])
    if space.mixture != "ratio":
        return best
    variants = Counter(_variant_of(p) for p in points)
    top = variants.most_common(1)[0][0]
    best = {k: v for k, v in best.items() if k not in ("strategy", "k", "order")}
    best.update({k: list(v) if k == "order" else v for k, v in top})
    same = [p for p in points if _variant_of(p) == top]
    shares = np.mean([[p["ratio"].get(d, 0.0) for d in space.domains] for p in same], axis=0)
    best["ratio"] = dict(zip(space.domains, (shares / shares.sum()).tolist()))
    amounts = [p["amount"] for p in same if p.get("amount")]
    if amounts:
        amount = math.exp(np.mean(np.log(amounts)))
        a = space.amount
        if a is not None and a.choices is not None:
            amount = min(a.choices, key=lambda c: abs(math.log(c) - math.log(amount)))
        best["amount"] = int(round(amount))
    return TrialPoint.from_wire(best).to_wire()


def _one_thread():
    """OpenMP threads off: on a busy machine HistGradientBoosting's threads spin-wait for each
    other (a 30-trial fit took 255 s on two shared cores, against well under a second on one
    thread); trials a few dozen large gain nothing from them."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def _variant_of(point: dict) -> tuple:
    return tuple((k, tuple(point[k]) if k == "order" else point[k])
                 for k in ("strategy", "k", "order") if point.get(k) is not None)
