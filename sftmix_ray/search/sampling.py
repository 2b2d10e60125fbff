"""Walking a search space: the Optuna define-by-run function (model-based samplers) and the full
grid. Both produce complete `TrialPoint`s; a ratio is sampled through stick-breaking so a
sampler's uniform coverage is uniform coverage of the simplex."""

from __future__ import annotations

import itertools

from ..config.point import POINT_KEY, TrialPoint
from ..config.space import (
    ONLINE_DEFAULTS,
    ONLINE_METHODS,
    TRAIN_PARAMS,
    SearchSpace,
    ValueRange,
    online_default,
)

ONLINE_TYPES = {"step_size": float, "smoothing": float, "warmup": float, "update_every": int}


def _normalize(ratio: dict[str, float], domains: list[str]) -> dict[str, float]:
    total = sum(ratio.get(d, 0.0) for d in domains)
    return {d: ratio.get(d, 0.0) / total for d in domains}


def stick_breaking(uniforms: list[float]) -> list[float]:
    """Map n-1 uniforms to a point spread uniformly over the n-simplex (a Dirichlet(1, ..., 1)
    draw by inverse CDF), so a sampler's uniform coverage becomes uniform coverage of ratios."""
    n = len(uniforms) + 1
    shares, remaining = [], 1.0
    for i, u in enumerate(uniforms):
        v = 1.0 - (1.0 - u) ** (1.0 / (n - 1 - i))  # Beta(1, n-1-i) inverse CDF
        shares.append(remaining * v)
        remaining -= shares[-1]
    shares.append(remaining)
    return shares


def inverse_stick_breaking(shares: list[float]) -> list[float]:
    """The uniforms that `stick_breaking` maps to these shares (for warm-start points)."""
    n, us, remaining = len(shares), [], 1.0
    for i, s in enumerate(shares[:-1]):
        v = min(1.0, s / remaining) if remaining > 1e-12 else 0.0
        us.append(1.0 - (1.0 - v) ** (n - 1 - i))
        remaining -= s
    return us


def raw_params(point: TrialPoint, space: SearchSpace) -> dict:
    """A point in the names `DefineByRun` suggests, so Optuna can enqueue it (a warm start;
    `SearchSpace.check_point` has checked that it fits)."""
    raw: dict = {"strategy": point.strategy}
    if point.strategy == "dmt":
        raw["dmt_k"] = point.k
    seq = space.options("sequential")
    if point.strategy == "sequential" and seq.orders:
        raw["sequential_order"] = order_name(point.order or seq.orders[0])
    for name, _ in (space.train.items() if space.train else []):
        raw[f"train.{name}"] = point.train[name]
    if point.strategy == "online":
        raw["online_method"] = point.online["method"]
        raw.update({f"online.{n}": point.online[n]
                    for n, r in space.options("online").online_knobs() if r is not None})
    if space.mixture == "ratio":
        if space.ratio_space.kind == "simplex" and len(space.domains) > 1:
            shares = [point.ratio.get(d, 0.0) for d in space.domains]
            total = sum(shares)
            raw.update({f"u{i}": u for i, u in
                        enumerate(inverse_stick_breaking([s / total for s in shares]))})
        raw["amount"] = point.amount
    else:
        per_domain = space.fractions or space.counts
        values = point.fractions if space.fractions else point.counts
        if per_domain.grid is not None:
            raw["mixture"] = per_domain.grid.index(values)
        else:
            raw.update({f"{space.mixture}.{d}": v for d, v in values.items()})
    return raw


class DefineByRun:
    """The Optuna define-by-run function: suggests raw params, returns the derived point.
    A class, not a closure, because Tune pickles its searcher with the experiment state."""

    def __init__(self, space: SearchSpace):
        self.space = space

    def __call__(self, trial) -> dict:
        space = self.space
        mixture = self._mixture(trial)
        strategy = trial.suggest_categorical("strategy", list(space.strategies))
        k = order = train = None
        if strategy == "dmt":
            k = trial.suggest_categorical("dmt_k", space.options("dmt").k)
        orders = space.options("sequential").orders
        if strategy == "sequential" and orders:
            name = trial.suggest_categorical("sequential_order", [order_name(o) for o in orders])
            order = name.split(">")
        if space.train is not None:
            train = {name: _suggest(trial, f"train.{name}", r, TRAIN_PARAMS[name])
                     for name, r in space.train.items()}
        online = suggest_online(trial, space) if strategy == "online" else None
        point = TrialPoint(strategy=strategy, k=k, order=order, train=train, online=online,
                           **mixture)
        # The study keeps the complete point too, so a model-based sampler (the surrogate)
        # reads every finished trial's coordinates from the study itself.
        trial.set_user_attr(POINT_KEY, point.to_wire())
        return {POINT_KEY: point.to_wire()}  # the complete point, beside Optuna's raw names

    def _mixture(self, trial) -> dict:
        space = self.space
        per_domain = space.fractions or space.counts
        if per_domain is not None:
            if per_domain.grid is not None:
                i = trial.suggest_categorical("mixture", list(range(len(per_domain.grid))))
                values = per_domain.grid[i]
            else:
                values = {d: trial.suggest_categorical(f"{space.mixture}.{d}", vs)
                          for d, vs in per_domain.choices.items()}
            return {space.mixture: dict(values)}
        ratio_space = space.ratio_space
        if ratio_space.kind == "fixed":
            ratio = _normalize(ratio_space.fixed, space.domains)
        elif len(space.domains) == 1:
            ratio = {space.domains[0]: 1.0}
        else:
            us = [trial.suggest_float(f"u{i}", 0.0, 1.0) for i in range(len(space.domains) - 1)]
            ratio = dict(zip(space.domains, stick_breaking(us)))
        if space.amount.choices is not None:
            amount = trial.suggest_categorical("amount", space.amount.choices)
        else:
            amount = trial.suggest_int("amount", space.amount.low, space.amount.high,
                                       log=space.amount.log)
        return {"ratio": ratio, "amount": amount}


def suggest_online(trial, space: SearchSpace) -> dict:
    """An online trial's method and knobs: searched where the space gives a range or choices,
    the defaults (ONLINE_DEFAULTS) elsewhere; doremi's reference rides along."""
    opts = space.options("online")
    method = trial.suggest_categorical("online_method", opts.methods or list(ONLINE_METHODS))
    knobs = {"method": method}
    for name, r in opts.online_knobs():
        knobs[name] = online_default(name, method) if r is None else \
            _suggest(trial, f"online.{name}", r, ONLINE_TYPES[name])
    if method == "doremi":
        knobs["reference"] = opts.reference
    return knobs


def online_variants(space: SearchSpace, grid: bool = True) -> list[dict]:
    """Every online method × the crossed choices of its knobs (grids need choices, not
    ranges); with `grid` False, one variant per method at the defaults (a placeholder whose
    knobs the caller draws)."""
    opts = space.options("online")
    knobs = opts.online_knobs() if grid else [(n, None) for n in ONLINE_DEFAULTS]
    ranged = [n for n, r in knobs if r is not None and r.choices is None]
    if ranged:
        raise ValueError(f"strategies.online: a grid needs choices, not ranges, for {ranged}")
    out = []
    for method in opts.methods or list(ONLINE_METHODS):
        values = [[online_default(n, method)] if r is None else
                  [ONLINE_TYPES[n](v) for v in r.choices] for n, r in knobs]
        extra = {"reference": opts.reference} if method == "doremi" else {}
        out.extend({"strategy": "online", "online": {"method": method, **dict(
            zip([n for n, _ in knobs], combo)), **extra}} for combo in itertools.product(*values))
    return out


def order_name(order: list[str]) -> str:
    return ">".join(order)


def _suggest(trial, name: str, r: ValueRange, kind: type):
    if r.choices is not None:
        return trial.suggest_categorical(name, [kind(v) for v in r.choices])
    if kind is int:
        return trial.suggest_int(name, int(r.low), int(r.high), log=r.log)
    return trial.suggest_float(name, r.low, r.high, log=r.log)


def strategy_points(space: SearchSpace, grid: bool = True) -> list[dict]:
    """Every strategy variant of the space: each DMT k, each sequential order, each online
    method (× its knobs' choices for a grid)."""
    out = []
    for name in space.strategies:
        opts = space.options(name)
        if name == "dmt":
            out.extend({"strategy": name, "k": k} for k in opts.k)
        elif name == "sequential" and opts.orders:
            out.extend({"strategy": name, "order": o} for o in opts.orders)
        elif name == "online":
            out.extend(online_variants(space, grid))
        else:
            out.append({"strategy": name})
    return out


def _train_points(space: SearchSpace) -> list[dict | None]:
    if space.train is None:
        return [None]
    items = space.train.items()
    return [{n: TRAIN_PARAMS[n](v) for (n, _), v in zip(items, values)}
            for values in itertools.product(*(r.choices for _, r in items))]


def grid_points(space: SearchSpace, seeds: list[int] | None = None) -> list[TrialPoint]:
    """Every point of a grid space, in a stable order; with `seeds`, every point once per seed."""
    if space.mixture == "ratio":
        r = space.ratio_space
        mixtures = [{"ratio": _normalize(x, space.domains), "amount": a}
                    for x in ([r.fixed] if r.kind == "fixed" else r.grid)
                    for a in space.amount.choices]
    else:
        mixtures = [{space.mixture: m} for m in (space.fractions or space.counts).mixtures()]
    return [TrialPoint(**m, **strat, train=train, seed=seed)
            for seed in (seeds or [None])
            for m, strat, train in itertools.product(mixtures, strategy_points(space),
                                                     _train_points(space))]
