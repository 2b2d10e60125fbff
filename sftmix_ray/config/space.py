"""The search-space file's schema: which mixtures, strategies and training hyperparameters a
sweep may try. A mixture is exactly one of `ratio` × `amount`, `fractions` of each domain, or
`counts` per domain; how a sampler or a grid walks the space is `search.sampling`'s job."""

from __future__ import annotations

import itertools
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .schema import Strict

# The strategies `plan.strategies` builds stage lists for (the study's RQ4), and `online`: one
# stage whose domain weights move during training (train.online_weights).
BUILT_IN_STRATEGIES = ("multi_task", "sequential", "mixed_sequential", "dmt", "online")
ONLINE_METHODS = ("exp3", "doremi")
# An online knob's value when the space does not search it (online_default: the step size per
# method: exp3's rewards are losses over draw probabilities, ~15 on the lab, so its exponent
# needs a step ten times smaller than DoReMi's 1 on excess losses; at 2 the lab's exp3 weights
# swung between domains at every update).
ONLINE_DEFAULTS = {"step_size": 1.0, "smoothing": 0.1, "warmup": 0.1, "update_every": 4}
EXP3_STEP_SIZE = 0.1


def online_default(name: str, method: str):
    return EXP3_STEP_SIZE if name == "step_size" and method == "exp3" else ONLINE_DEFAULTS[name]


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
    methods: list[Literal["exp3", "doremi"]] | None = Field(
        None, description="online: exp3 (ODM's bandit on training losses) and/or doremi "
        "(Group-DRO on excess loss over a reference model)")
    step_size: ValueRange | None = Field(None, description="online: the update's step size")
    smoothing: ValueRange | None = Field(None, description="online: the uniform mix-in, in "
                                         "[0, 1) (each domain's floor is smoothing / domains)")
    warmup: ValueRange | None = Field(None, description="online: the fraction of optimizer "
                                      "steps trained at the prior before weights move")
    update_every: ValueRange | None = Field(None, description="online: optimizer steps "
                                            "between weight updates")
    reference: str = Field("base", description="online doremi: the reference model, 'base' "
                           "(the model SFT starts from) or a local checkpoint directory")

    def online_knobs(self) -> list[tuple[str, ValueRange | None]]:
        return [(n, getattr(self, n)) for n in ONLINE_DEFAULTS]

    @model_validator(mode="after")
    def _k_range(self):
        if self.k is not None and (not self.k or any(not 0 < v <= 1 for v in self.k)):
            raise ValueError(f"every k must be in (0, 1]: {self.k}")
        if self.order is not None and self.orders is not None:
            raise ValueError("give 'order' (one fixed order) or 'orders' (orders to search), "
                             "not both")
        if self.orders is not None and not self.orders:
            raise ValueError("orders: give at least one order")
        if self.methods is not None and not self.methods:
            raise ValueError("methods: give at least one of exp3, doremi")
        for name, r in self.online_knobs():
            values = [] if r is None else r.choices if r.choices is not None else [r.low, r.high]
            if name == "smoothing" and any(not 0 <= v < 1 for v in values):
                raise ValueError(f"smoothing must be in [0, 1): {values}")
            if name == "warmup" and any(not 0 <= v < 1 for v in values):
                raise ValueError(f"warmup is a fraction of the steps, in [0, 1): {values}")
            if name == "step_size" and any(v <= 0 for v in values):
                raise ValueError(f"step_size must be positive: {values}")
            if name == "update_every" and any(v < 1 or v != int(v) for v in values):
                raise ValueError(f"update_every must be a whole number of steps >= 1: {values}")
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
        description=f"built in: {', '.join(BUILT_IN_STRATEGIES)}; any other name declares "
                    f"its 'stages'")
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
            if name in BUILT_IN_STRATEGIES and opts is not None and opts.stages is not None:
                raise ValueError(f"strategies.{name} is built in; give your stage list another "
                                 f"name")
            if name not in BUILT_IN_STRATEGIES and (opts is None or not opts.stages):
                raise ValueError(f"strategies.{name}: not a built-in strategy "
                                 f"({', '.join(BUILT_IN_STRATEGIES)}), so it needs 'stages'")
            for st in (opts.stages or []) if opts else []:
                unknown = (set(st.domains) | set(st.replay or {})) - set(self.domains)
                if unknown:
                    raise ValueError(f"strategies.{name}.stages name undeclared domains "
                                     f"{sorted(unknown)}")
        for name, opts in self.strategies.items():
            online_fields = [f for f in ("methods", *ONLINE_DEFAULTS)
                             if opts is not None and getattr(opts, f) is not None]
            if name != "online" and online_fields:
                raise ValueError(f"strategies.{name}: {online_fields} belong to strategy "
                                 f"'online'")
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

    def check_point(self, point) -> list[str]:
        """What keeps a given point (a warm start) from being one this space can propose."""
        problems = []
        if point.strategy not in self.strategies:
            return [f"strategy {point.strategy!r} is not in the space "
                    f"({', '.join(self.strategies)})"]
        dmt_k = self.options("dmt").k or []
        if point.strategy == "dmt" and point.k not in dmt_k:
            problems.append(f"k {point.k!r} is not one of the space's DMT k {dmt_k}")
        methods = self.options("online").methods or list(ONLINE_METHODS)
        if point.strategy == "online" and (point.online or {}).get("method") not in methods:
            problems.append(f"online method {(point.online or {}).get('method')!r} is not one "
                            f"of the space's {methods}")
        orders = self.options("sequential").orders
        if point.strategy == "sequential" and orders and point.order is not None \
                and list(point.order) not in [list(o) for o in orders]:
            problems.append(f"order {point.order} is not one of the space's orders")
        missing = [n for n, _ in (self.train.items() if self.train else [])
                   if n not in (point.train or {})]
        if missing:
            problems.append(f"train: the space searches {missing}; give their values")
        if point.mixture_kind != self.mixture:
            return problems + [f"the point is a {point.mixture_kind} mixture; the space's "
                               f"mixtures are {self.mixture}"]
        if self.mixture == "ratio" and (point.ratio is None or point.amount is None):
            problems.append("a ratio point needs both 'ratio' and 'amount'")
        per_domain = self.fractions or self.counts
        values = point.fractions if self.fractions else point.counts
        if per_domain is not None and per_domain.grid is not None and \
                values not in per_domain.grid:
            problems.append(f"{self.mixture} {values} is not in the space's grid")
        return problems
