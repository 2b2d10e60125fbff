"""Search spaces over data composition: ratio simplex, amount, strategy (with conditional params).

A space file validates into `SearchSpace`, which becomes an Optuna define-by-run function (for the
model-based samplers) or a Tune grid. Every trial's config is a *point*: a mixture
(`{"ratio": {domain: share}, "amount": int}`, `{"fractions": {domain: f}}` or
`{"counts": {domain: n}}`), plus `"strategy": name`, `"k": float | None`, for sequential
strategies whose order is searched `"order": [domain, ...]`, and for searched training
hyperparameters `"train": {name: value}`.
"""

from __future__ import annotations

import itertools
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..config import Strict, SweepConfig
from ..strategies import STRATEGIES


class RatioSpace(Strict):
    kind: Literal["simplex", "fixed"] = "simplex"
    fixed: dict[str, float] | None = Field(None, description="kind=fixed: the one ratio to use")
    grid: list[dict[str, float]] | None = Field(None, description="ratios for grid sweeps")

    @model_validator(mode="after")
    def _consistent(self):
        if self.kind == "fixed" and not self.fixed:
            raise ValueError("kind 'fixed' needs 'fixed': {domain: share}")
        for r in ([self.fixed] if self.fixed else []) + (self.grid or []):
            if any(v < 0 for v in r.values()) or sum(r.values()) <= 0:
                raise ValueError(f"a ratio needs non-negative shares with a positive sum: {r}")
        return self


class AmountSpace(Strict):
    low: int | None = Field(None, gt=0, description="fewest training samples in a trial")
    high: int | None = Field(None, gt=0)
    log: bool = True
    choices: list[int] | None = Field(None, description="discrete totals (required for grids)")

    @model_validator(mode="after")
    def _range(self):
        if self.choices is None and (self.low is None or self.high is None):
            raise ValueError("give 'low' and 'high', or 'choices'")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low ({self.low}) is greater than high ({self.high})")
        if self.choices is not None and (not self.choices or min(self.choices) <= 0):
            raise ValueError("choices must be positive sample counts")
        return self


class PerDomainSpace(Strict):
    """Fractions of each domain, or absolute counts per domain: an explicit list of mixtures
    (`grid`) or a set of values per domain (`choices`, crossed for grids, categorical for Optuna).
    A domain left out gets 0."""

    grid: list[dict[str, float]] | None = None
    choices: dict[str, list[float]] | None = None

    @model_validator(mode="after")
    def _one_form(self):
        if (self.grid is None) == (self.choices is None):
            raise ValueError("give exactly one of 'grid' (a list of mixtures) or 'choices' "
                             "(values per domain)")
        values = [v for m in (self.grid or []) for v in m.values()] + \
            [v for vs in (self.choices or {}).values() for v in vs]
        if any(v < 0 for v in values):
            raise ValueError("values must be non-negative")
        if self.grid is not None and (not self.grid or any(not any(m.values()) for m in self.grid)):
            raise ValueError("every mixture in 'grid' needs a positive value")
        if self.choices is not None and any(not vs for vs in self.choices.values()):
            raise ValueError("every domain in 'choices' needs at least one value")
        return self

    def domains(self) -> set[str]:
        return {d for m in (self.grid or []) for d in m} | set(self.choices or {})

    def mixtures(self) -> list[dict[str, float]]:
        if self.grid is not None:
            return [dict(m) for m in self.grid]
        names = list(self.choices)
        return [dict(zip(names, vals)) for vals in itertools.product(*self.choices.values())
                if any(vals)]


class StageSpec(Strict):
    name: str | None = None
    domains: list[str] = Field(default_factory=list, description="trained on in full")
    replay: dict[str, float] | None = Field(None, description="fractions of other domains' "
                                            "counts mixed in (nested subsets)")
    epochs: int | None = Field(None, gt=0, description="default: train.epochs")
    steps: int | None = Field(None, gt=0, description="stop the stage after this many optimizer "
                              "steps (its schedule spans them)")

    @model_validator(mode="after")
    def _some_data(self):
        if not self.domains and not self.replay:
            raise ValueError("a stage needs 'domains' or 'replay'")
        if self.replay and any(not 0 < f <= 1 for f in self.replay.values()):
            raise ValueError(f"replay fractions must be in (0, 1]: {self.replay}")
        return self


class StrategyOptions(Strict):
    k: list[float] | None = Field(None, description="DMT: fractions of specialized data in stage 2")
    order: list[str] | None = Field(None, description="sequential: domain order")
    orders: list[list[str]] | None = Field(None, description="sequential: domain orders to "
                                           "search over (categorical; crossed in grids)")
    stages: list[StageSpec] | None = Field(None, description="a strategy of your own: its stages")

    @model_validator(mode="after")
    def _k_range(self):
        if self.k is not None and (not self.k or any(not 0 < v <= 1 for v in self.k)):
            raise ValueError(f"every k must be in (0, 1]: {self.k}")
        if self.order is not None and self.orders is not None:
            raise ValueError("give 'order' (one fixed order) or 'orders' (orders to search), "
                             "not both")
        if self.orders is not None and not self.orders:
            raise ValueError("orders: give at least one order")
        return self


class ValueRange(Strict):
    """One searched hyperparameter: a range (`low`, `high`, `log`) or `choices`."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[float] | None = None

    @model_validator(mode="after")
    def _one_form(self):
        if (self.choices is None) == (self.low is None or self.high is None):
            raise ValueError("give 'low' and 'high', or 'choices'")
        if self.choices is not None and not self.choices:
            raise ValueError("choices: give at least one value")
        if self.low is not None and self.high is not None:
            if self.low > self.high:
                raise ValueError(f"low ({self.low:g}) is greater than high ({self.high:g})")
            if self.log and self.low <= 0:
                raise ValueError("a log range needs low > 0")
        return self


# Searchable training hyperparameters and their types (lora_* go into the sweep's `train.lora`).
TRAIN_PARAMS = {"lr": float, "epochs": int, "batch_size": int, "warmup_ratio": float,
                "weight_decay": float, "lora_r": int, "lora_alpha": int}


class TrainSpace(Strict):
    """Training hyperparameters searched together with the mixture; each overrides the sweep's
    `train:` value (`lora_r`/`lora_alpha`: its `train.lora`) for the trial."""

    lr: ValueRange | None = None
    epochs: ValueRange | None = None
    batch_size: ValueRange | None = None
    warmup_ratio: ValueRange | None = None
    weight_decay: ValueRange | None = None
    lora_r: ValueRange | None = None
    lora_alpha: ValueRange | None = None

    def items(self) -> list[tuple[str, ValueRange]]:
        return [(n, r) for n in TRAIN_PARAMS if (r := getattr(self, n)) is not None]

    @field_validator("*")
    @classmethod
    def _valid_values(cls, r, info):
        if r is None:
            return r
        values = r.choices if r.choices is not None else [r.low, r.high]
        if TRAIN_PARAMS[info.field_name] is int and any(v != int(v) for v in values):
            raise ValueError("whole numbers only")
        may_be_zero = info.field_name in ("warmup_ratio", "weight_decay")
        if any(v < 0 or (v == 0 and not may_be_zero) for v in values):
            raise ValueError("values must be positive")
        return r


class SearchSpace(Strict):
    """A mixture is exactly one of: `ratio` (default: the simplex) × `amount`; `fractions` of
    each domain; `counts` per domain."""

    domains: list[str] = Field(min_length=1)
    specialized: list[str] = Field(default_factory=list,
                                   description="domains trained first by mixed-sequential and DMT")
    ratio: RatioSpace | None = None
    amount: AmountSpace | None = None
    fractions: PerDomainSpace | None = Field(None, description="fractions of each domain")
    counts: PerDomainSpace | None = Field(None, description="samples per domain")
    strategies: dict[str, StrategyOptions | None] = Field(
        description=f"built in: {', '.join(STRATEGIES)}; any other name declares its 'stages'")
    train: TrainSpace | None = Field(None, description="training hyperparameters to search "
                                     "(lr, epochs, batch_size, warmup_ratio, weight_decay, "
                                     "lora_r, lora_alpha)")

    @model_validator(mode="after")
    def _internal(self):
        unknown = [d for d in self.specialized if d not in self.domains]
        if unknown:
            raise ValueError(f"specialized names undeclared domains: {unknown}")
        given = [k for k in ("fractions", "counts") if getattr(self, k) is not None]
        if self.amount is not None:
            given.insert(0, "ratio×amount")
        elif self.ratio is not None:
            raise ValueError("a 'ratio' needs an 'amount' (the total it shares out)")
        if len(given) != 1:
            raise ValueError("give exactly one mixture: 'amount' (with an optional 'ratio'), "
                             f"'fractions' or 'counts'; got {given or 'none'}")
        per_domain = self.fractions or self.counts
        if per_domain is not None:
            extra = per_domain.domains() - set(self.domains)
            if extra:
                raise ValueError(f"{given[0]} name undeclared domains {sorted(extra)}")
        if self.counts is not None and any(v != int(v) for m in self.counts.mixtures()
                                           for v in m.values()):
            raise ValueError("counts must be whole numbers of samples")
        if not self.strategies:
            raise ValueError("strategies: give at least one")
        for name, opts in self.strategies.items():
            if name in STRATEGIES and opts is not None and opts.stages is not None:
                raise ValueError(f"strategies.{name} is built in; give your stage list another "
                                 f"name")
            if name not in STRATEGIES and (opts is None or not opts.stages):
                raise ValueError(f"strategies.{name}: not a built-in strategy "
                                 f"({', '.join(STRATEGIES)}), so it needs 'stages'")
            for st in (opts.stages or []) if opts else []:
                unknown = (set(st.domains) | set(st.replay or {})) - set(self.domains)
                if unknown:
                    raise ValueError(f"strategies.{name}.stages name undeclared domains "
                                     f"{sorted(unknown)}")
        dmt = self.strategies.get("dmt")
        if "dmt" in self.strategies and (dmt is None or not dmt.k):
            raise ValueError("strategies.dmt needs its k values, e.g. k: [1, 0.25, 0.0625]")
        for name in ("dmt", "mixed_sequential"):
            if name in self.strategies and not self.specialized:
                raise ValueError(f"strategy {name!r} needs 'specialized' domains")
        return self

    def options(self, strategy: str) -> StrategyOptions:
        return self.strategies.get(strategy) or StrategyOptions()

    @property
    def mixture(self) -> str:
        return "fractions" if self.fractions else "counts" if self.counts else "ratio"

    @property
    def ratio_space(self) -> RatioSpace:
        return self.ratio or RatioSpace()


def check_space_against_sweep(space: SearchSpace, sweep: SweepConfig) -> list[str]:
    problems = []
    for d in space.domains:
        if d not in sweep.domains:
            problems.append(f"search.space.domains: {d!r} is not declared under 'domains' "
                            f"(declared: {', '.join(sweep.domains)})")
    seq = space.options("sequential")
    orders = [("order", seq.order)] if seq.order else []
    orders += [("orders", o) for o in seq.orders or []]
    for field_name, order in orders:
        if sorted(order) != sorted(space.domains):
            problems.append(f"search.space.strategies.sequential.{field_name}: {order} must "
                            f"list each domain once ({space.domains})")
    for name, r in (space.train.items() if space.train else []):
        if name.startswith("lora_") and sweep.train.lora is None:
            problems.append(f"search.space.train.{name}: the sweep trains every weight; set "
                            f"train.lora to search LoRA settings")
        if sweep.search.algorithm == "grid" and r.choices is None:
            problems.append(f"search.space.train.{name}: a grid sweep needs 'choices'")
    ratio = space.ratio_space
    for r in ([ratio.fixed] if ratio.fixed else []) + (ratio.grid or []):
        extra = set(r) - set(space.domains)
        if extra:
            problems.append(f"search.space.ratio: unknown domains {sorted(extra)}")
    if sweep.search.algorithm == "grid" and space.mixture == "ratio":
        if space.amount.choices is None:
            problems.append("search.space.amount: a grid sweep needs 'choices'")
        if ratio.kind == "simplex" and not ratio.grid:
            problems.append("search.space.ratio: a grid sweep needs 'grid' ratios or kind 'fixed'")
    for i, point in enumerate(sweep.search.warm_start or []):
        try:
            raw_params(point, space)
        except (KeyError, ValueError, TypeError) as exc:
            problems.append(f"search.warm_start[{i}]: does not fit the space ({exc!r})")
    if space.fractions is not None:
        for m in space.fractions.mixtures():
            for d, f in m.items():
                if f > 1 and d in sweep.domains and not sweep.domains[d].upsample:
                    problems.append(f"search.space.fractions: {d}={f:g} is more than the whole "
                                    f"domain; set domains.{d}.upsample: true to repeat it")
    return problems


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


def raw_params(point: dict, space: SearchSpace) -> dict:
    """A point in the names `DefineByRun` suggests, so Optuna can enqueue it."""
    raw: dict = {"strategy": point["strategy"]}
    if point["strategy"] not in space.strategies:
        raise ValueError(f"warm_start: strategy {point['strategy']!r} is not in the space")
    if point["strategy"] == "dmt":
        raw["dmt_k"] = point["k"]
    seq = space.options("sequential")
    if point["strategy"] == "sequential" and seq.orders:
        raw["sequential_order"] = order_name(point.get("order") or seq.orders[0])
    if space.train is not None:
        given = point.get("train") or {}
        for name, _ in space.train.items():
            raw[f"train.{name}"] = given[name]
    kind = space.mixture
    if kind == "ratio":
        if space.ratio_space.kind == "simplex" and len(space.domains) > 1:
            shares = [point["ratio"].get(d, 0.0) for d in space.domains]
            total = sum(shares)
            raw.update({f"u{i}": u for i, u in
                        enumerate(inverse_stick_breaking([s / total for s in shares]))})
        raw["amount"] = point["amount"]
    else:
        per_domain = space.fractions or space.counts
        if per_domain.grid is not None:
            raw["mixture"] = per_domain.grid.index(point[kind])
        else:
            raw.update({f"{kind}.{d}": v for d, v in point[kind].items()})
    return raw


class DefineByRun:
    """The Optuna define-by-run function: suggests raw params, returns the derived point.
    A class, not a closure, because Tune pickles its searcher with the experiment state."""

    def __init__(self, space: SearchSpace):
        self.space = space

    def __call__(self, trial):
        space = self.space
        mixture = self._mixture(trial)
        strategy = trial.suggest_categorical("strategy", list(space.strategies))
        k = order = None
        if strategy == "dmt":
            k = trial.suggest_categorical("dmt_k", space.options("dmt").k)
        orders = space.options("sequential").orders
        if strategy == "sequential" and orders:
            name = trial.suggest_categorical("sequential_order", [order_name(o) for o in orders])
            order = name.split(">")
        point = {**mixture, "k": k}
        if order is not None:
            point["order"] = order
        if space.train is not None:
            point["train"] = {name: _suggest(trial, f"train.{name}", r, TRAIN_PARAMS[name])
                              for name, r in space.train.items()}
        return point

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
            trial.suggest_categorical("amount", space.amount.choices)
        else:
            trial.suggest_int("amount", space.amount.low, space.amount.high, log=space.amount.log)
        return {"ratio": ratio}


def order_name(order: list[str]) -> str:
    return ">".join(order)


def _suggest(trial, name: str, r: "ValueRange", kind: type):
    if r.choices is not None:
        return trial.suggest_categorical(name, [kind(v) for v in r.choices])
    if kind is int:
        return trial.suggest_int(name, int(r.low), int(r.high), log=r.log)
    return trial.suggest_float(name, r.low, r.high, log=r.log)


def _strategy_points(space: SearchSpace) -> list[dict]:
    out = []
    for name in space.strategies:
        opts = space.options(name)
        if name == "dmt":
            out.extend({"strategy": name, "k": k} for k in opts.k)
        elif name == "sequential" and opts.orders:
            out.extend({"strategy": name, "k": None, "order": o} for o in opts.orders)
        else:
            out.append({"strategy": name, "k": None})
    return out


def _train_points(space: SearchSpace) -> list[dict | None]:
    if space.train is None:
        return [None]
    items = space.train.items()
    return [{n: TRAIN_PARAMS[n](v) for (n, _), v in zip(items, values)}
            for values in itertools.product(*(r.choices for _, r in items))]


def grid_points(space: SearchSpace) -> list[dict]:
    """Every point of a grid space, in a stable order."""
    if space.mixture == "ratio":
        r = space.ratio_space
        mixtures = [{"ratio": _normalize(x, space.domains), "amount": a}
                    for x in ([r.fixed] if r.kind == "fixed" else r.grid)
                    for a in space.amount.choices]
    else:
        mixtures = [{space.mixture: m} for m in (space.fractions or space.counts).mixtures()]
    points = []
    for m, strat, train in itertools.product(mixtures, _strategy_points(space),
                                             _train_points(space)):
        points.append({**m, **strat, **({"train": train} if train is not None else {})})
    return points


def describe(point: dict) -> str:
    """A short human label for a trial's mixture, for progress lines and tables."""
    if point.get("fractions") is not None:
        return " ".join(f"{d}={_fraction(v)}" for d, v in point["fractions"].items()) + \
            " (fractions)"
    if point.get("counts") is not None:
        return " ".join(f"{d}={int(v)}" for d, v in point["counts"].items()) + " (counts)"
    ratio = " ".join(f"{d}={v:.2f}" for d, v in (point.get("ratio") or {}).items())
    return f"n={point.get('amount')} {ratio}"


def _fraction(v: float) -> str:
    if 0 < v < 1 and abs(1 / v - round(1 / v)) < 1e-9:
        return f"1/{round(1 / v)}"
    return f"{v:g}"
