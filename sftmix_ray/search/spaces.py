"""Search spaces over data composition: ratio simplex, amount, strategy (with conditional params).

A space file validates into `SearchSpace`, which becomes an Optuna define-by-run function (for the
model-based samplers) or a Tune grid. Every trial's config is a *point*:
`{"ratio": {domain: share}, "amount": int, "strategy": name, "k": float | None}`.
"""

from __future__ import annotations

import itertools
from typing import Literal

from pydantic import Field, model_validator

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


class StrategyOptions(Strict):
    k: list[float] | None = Field(None, description="DMT: fractions of specialized data in stage 2")
    order: list[str] | None = Field(None, description="sequential: domain order")

    @model_validator(mode="after")
    def _k_range(self):
        if self.k is not None and (not self.k or any(not 0 < v <= 1 for v in self.k)):
            raise ValueError(f"every k must be in (0, 1]: {self.k}")
        return self


class SearchSpace(Strict):
    domains: list[str] = Field(min_length=1)
    specialized: list[str] = Field(default_factory=list,
                                   description="domains trained first by mixed-sequential and DMT")
    ratio: RatioSpace = RatioSpace()
    amount: AmountSpace
    strategies: dict[Literal[tuple(STRATEGIES)], StrategyOptions | None]  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _internal(self):
        unknown = [d for d in self.specialized if d not in self.domains]
        if unknown:
            raise ValueError(f"specialized names undeclared domains: {unknown}")
        if not self.strategies:
            raise ValueError("strategies: give at least one")
        dmt = self.strategies.get("dmt")
        if "dmt" in self.strategies and (dmt is None or not dmt.k):
            raise ValueError("strategies.dmt needs its k values, e.g. k: [1, 0.25, 0.0625]")
        for name in ("dmt", "mixed_sequential"):
            if name in self.strategies and not self.specialized:
                raise ValueError(f"strategy {name!r} needs 'specialized' domains")
        return self

    def options(self, strategy: str) -> StrategyOptions:
        return self.strategies.get(strategy) or StrategyOptions()


def check_space_against_sweep(space: SearchSpace, sweep: SweepConfig) -> list[str]:
    problems = []
    for d in space.domains:
        if d not in sweep.domains:
            problems.append(f"search.space.domains: {d!r} is not declared under 'domains' "
                            f"(declared: {', '.join(sweep.domains)})")
    seq = space.strategies.get("sequential")
    if seq is not None and seq.order is not None and sorted(seq.order) != sorted(space.domains):
        problems.append(f"search.space.strategies.sequential.order: {seq.order} must list each "
                        f"domain once ({space.domains})")
    ratios = ([space.ratio.fixed] if space.ratio.fixed else []) + (space.ratio.grid or [])
    for r in ratios:
        extra = set(r) - set(space.domains)
        if extra:
            problems.append(f"search.space.ratio: unknown domains {sorted(extra)}")
    if sweep.search.algorithm == "grid":
        if space.amount.choices is None:
            problems.append("search.space.amount: a grid sweep needs 'choices'")
        if space.ratio.kind == "simplex" and not space.ratio.grid:
            problems.append("search.space.ratio: a grid sweep needs 'grid' ratios or kind 'fixed'")
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


class DefineByRun:
    """The Optuna define-by-run function: suggests raw params, returns the derived point.
    A class, not a closure, because Tune pickles its searcher with the experiment state."""

    def __init__(self, space: SearchSpace):
        self.space = space

    def __call__(self, trial):
        space = self.space
        if space.ratio.kind == "fixed":
            ratio = _normalize(space.ratio.fixed, space.domains)
        elif len(space.domains) == 1:
            ratio = {space.domains[0]: 1.0}
        else:
            us = [trial.suggest_float(f"u{i}", 0.0, 1.0) for i in range(len(space.domains) - 1)]
            ratio = dict(zip(space.domains, stick_breaking(us)))
        if space.amount.choices is not None:
            trial.suggest_categorical("amount", space.amount.choices)
        else:
            trial.suggest_int("amount", space.amount.low, space.amount.high, log=space.amount.log)
        strategy = trial.suggest_categorical("strategy", list(space.strategies))
        k = None
        if strategy == "dmt":
            k = trial.suggest_categorical("dmt_k", space.options("dmt").k)
        return {"ratio": ratio, "k": k}


def grid_points(space: SearchSpace) -> list[dict]:
    """Every point of a grid space, in a stable order."""
    ratios = [space.ratio.fixed] if space.ratio.kind == "fixed" else space.ratio.grid
    strategy_points = []
    for name in space.strategies:
        ks = space.options(name).k if name == "dmt" else [None]
        strategy_points.extend((name, k) for k in ks)
    return [{"ratio": _normalize(r, space.domains), "amount": a, "strategy": s, "k": k}
            for r, a, (s, k) in itertools.product(ratios, space.amount.choices, strategy_points)]
