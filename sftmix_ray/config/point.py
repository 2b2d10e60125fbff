"""A trial point: everything a searcher (or a grid) decides for one trial, in one shape.

Optuna trials and grid trials both carry the complete point under the trial config's `point` key
(its wire form, `to_wire`), so nothing downstream depends on how a searcher names its raw
suggestions. Describing a point for people (progress lines, tables) and flattening it for MLflow
params live here too, beside the one definition.
"""

from __future__ import annotations

from pydantic import Field

from .schema import Strict

POINT_KEY = "point"  # the trial config's key for the point's wire form
MIXTURE_KINDS = ("ratio", "fractions", "counts")


class TrialPoint(Strict):
    strategy: str
    k: float | None = Field(None, description="DMT: the fraction of specialized data replayed")
    order: list[str] | None = Field(None, description="sequential: the searched domain order")
    ratio: dict[str, float] | None = None
    amount: int | None = None
    fractions: dict[str, float] | None = None
    counts: dict[str, float] | None = None
    train: dict[str, int | float] | None = Field(None, description="searched hyperparameters")
    seed: int | None = Field(None, description="grid sweeps repeated over seeds: this trial's")
    online: dict[str, int | float | str] | None = Field(
        None, description="online: method, step_size, smoothing, warmup, update_every "
        "(and doremi's reference)")

    @classmethod
    def from_wire(cls, data: dict) -> TrialPoint:
        return cls.model_validate(data)

    def to_wire(self) -> dict:
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def of_trial(cls, config: dict) -> TrialPoint:
        """The point a Tune trial's config carries."""
        return cls.from_wire(config[POINT_KEY])

    @property
    def mixture_kind(self) -> str:
        return "fractions" if self.fractions is not None else \
            "counts" if self.counts is not None else "ratio"

    def mixture(self) -> dict:
        """The mixture as `data.mixture.resolve_counts` takes it."""
        return {k: getattr(self, k) for k in ("ratio", "amount", "fractions", "counts")
                if getattr(self, k) is not None}

    def describe(self) -> str:
        """A short human label for the mixture, for progress lines, tables and run
        descriptions: shares as percentages, amounts as sample counts, so a share is never
        read as a score (`33% math · 48% code · 19% general, 1,216 samples`)."""
        if self.fractions is not None:
            return "fractions of each domain: " + " · ".join(
                f"{_fraction(v)} {d}" for d, v in self.fractions.items())
        if self.counts is not None:
            return " · ".join(f"{int(v):,} {d}" for d, v in self.counts.items()) + " samples"
        ratio = " · ".join(f"{v:.0%} {d}" for d, v in (self.ratio or {}).items())
        return f"{ratio}, {self.amount:,} samples" if self.amount is not None else ratio

    def settings(self) -> str:
        """What else the point fixes beyond its mixture: k, order, hyperparameters, seed."""
        out = f" k={_fraction(self.k)}" if self.k is not None else ""
        if self.order:
            out += f" order={'>'.join(self.order)}"
        out += "".join(f" {n}={v:g}" for n, v in (self.train or {}).items())
        out += "".join(f" {n}={v:g}" if isinstance(v, (int, float)) else f" {n}={v}"
                       for n, v in (self.online or {}).items() if n != "reference")
        if self.seed is not None:
            out += f" seed={self.seed}"
        return out

    def flat_params(self) -> dict:
        """The point as MLflow params: one flat key per value."""
        out = {}
        for kind in MIXTURE_KINDS:
            for d, v in (getattr(self, kind) or {}).items():
                out[f"{kind}.{d}"] = round(v, 6)
        out["mixture"] = self.mixture_kind
        out.update({k: getattr(self, k) for k in ("amount", "strategy", "k")
                    if getattr(self, k) is not None})
        if self.order:
            out["order"] = ">".join(self.order)
        out.update({f"train.{k}": v for k, v in (self.train or {}).items()})
        out.update({f"online.{k}": v for k, v in (self.online or {}).items()})
        if self.seed is not None:
            out["seed"] = self.seed
        return out

    @classmethod
    def from_params(cls, params: dict) -> TrialPoint:
        """Back from MLflow params (values are strings there); searched hyperparameters and
        the order are not needed to label a trial, so they are left out."""
        mixture = {kind: {k.split(".", 1)[1]: float(v) for k, v in params.items()
                          if k.startswith(f"{kind}.")} or None for kind in MIXTURE_KINDS}
        return cls(strategy=params.get("strategy") or "?", k=_float(params.get("k")),
                   amount=int(params["amount"]) if params.get("amount") else None,
                   online=online_from_params(params), **mixture)


def online_from_params(params: dict) -> dict | None:
    """The online knobs back from MLflow params (strings there): numbers as numbers."""
    out = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith("online.")}
    for k, v in out.items():
        number = _float(v)
        out[k] = v if number is None else int(number) if k == "update_every" else number
    return out or None


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _fraction(v: float) -> str:
    if 0 < v < 1 and abs(1 / v - round(1 / v)) < 1e-9:
        return f"1/{round(1 / v)}"
    return f"{v:g}"
