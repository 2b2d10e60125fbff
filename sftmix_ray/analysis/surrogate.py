"""A surrogate of the abilities: per ability, a Gaussian-process regression with uncertainty over
a trial's coordinates (ratio on the simplex, log amount, strategy, k, order, searched
hyperparameters), fitted to finished trials.

Why scikit-learn's `GaussianProcessRegressor`: a GP gives a predictive mean *and* standard
deviation (what expected-hypervolume improvement needs), its ARD Matérn kernel learns how much
each coordinate matters from a few dozen trials, and a `WhiteKernel` learns the evaluation noise,
which we report beside the noise seen between seed repeats. scikit-learn is a stable public API
already in the environment (Optuna's GP lives in private modules; BoTorch would add a large
dependency for the same model at this scale).

Proxy trials (a smaller model, fewer samples or epochs) enter as a prior mean, Kennedy and
O'Hagan's autoregressive multi-fidelity model: target(x) = ρ·proxy(x) + δ(x), with `proxy` a GP
fitted to the proxy trials, ρ fitted by least squares once there are enough target trials, and
δ a GP on the residuals. Before any target trial, the prediction is the proxy's, with its
uncertainty widened by the spread of the proxy's scores (nothing says yet how far they transfer).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from ..config.space import SearchSpace
from .records import TARGET_FIDELITY, Record, point_key

MAX_FIT_POINTS = 128  # kernel hyperparameters are fitted on at most this many trials (see fit_gp)
MIN_TARGET_FOR_RHO = 6  # fewer target trials: ρ = 1 (a slope from 3 points is noise)
# The shortest length scale a kernel may learn, in unit coordinates (a tenth of the simplex, of
# the log amount range). At 0.01, fitted to the lab's 20 proxy trials on a lattice in thirds, the
# GP chose 0.01-0.04 on the shares: a lookup table of its trials that predicted the mean between
# them (correlation with the lab's spline between lattice points: general 0.46, math 0.50; at
# 0.1: 0.92, 0.93); with the proxy asked at its own amount (Surrogate), the transfer
# benchmark's worst seed at 12 trials rose 0.62 → 0.70 (the landscape from before the base model).
LENGTH_SCALE_MIN = 0.1


class Encoder:
    """A point → a feature vector in [0, 1]^d (categoricals one-hot), from the space it lives
    in; points outside the space's ranges (a proxy's smaller amounts) land outside [0, 1]."""

    def __init__(self, space: SearchSpace, records: list[Record] = ()):
        self.space = space
        self.domains = list(space.domains)
        self.variants = _variants(space)
        amounts = [r.trial_point.amount for r in records if r.trial_point.amount]
        a = space.amount
        lows = ([a.low] if a and a.low else []) + (list(a.choices) if a and a.choices else [])
        highs = ([a.high] if a and a.high else []) + (list(a.choices) if a and a.choices else [])
        lo, hi = min(lows + amounts, default=1), max(highs + amounts, default=1)
        self.log_lo, self.log_span = math.log(lo), max(math.log(hi) - math.log(lo), 1e-9)
        self.train = space.train.items() if space.train else []
        # online knobs the space searches: coordinates of their own (0 for other strategies)
        self.online = [(n, r) for n, r in space.options("online").online_knobs()
                       if r is not None] if "online" in space.strategies else []

    def names(self) -> list[str]:
        out = [f"share.{d}" for d in self.domains] if self.space.mixture != "ratio" or \
            len(self.domains) > 1 else []
        if self.space.mixture == "ratio":
            out = out[:-1] + ["log_amount"]
        return out + [f"variant.{v}" for v in self.variants] + ["log_k"] + \
            [f"train.{n}" for n, _ in self.train] + [f"online.{n}" for n, _ in self.online]

    def __call__(self, point: dict) -> list[float]:
        p = point
        if self.space.mixture == "ratio":
            ratio = p.get("ratio") or {}
            total = sum(ratio.get(d, 0.0) for d in self.domains) or 1.0
            x = [ratio.get(d, 0.0) / total for d in self.domains[:-1]]
            x.append((math.log(p.get("amount") or 1) - self.log_lo) / self.log_span)
        else:
            values = p.get(self.space.mixture) or {}
            top = max(values.values(), default=1.0) or 1.0
            x = [values.get(d, 0.0) / top for d in self.domains]
        name = _variant(p.get("strategy"), p.get("k"), p.get("order"), p.get("online"))
        x += [1.0 if v == name else 0.0 for v in self.variants]
        ks = self.space.options("dmt").k or [1.0]
        k_lo = math.log(min(ks)) if min(ks) < 1 else -1.0
        x.append(math.log(p.get("k")) / k_lo if p.get("k") else 0.0)
        for n, r in self.train:
            x.append(_unit((p.get("train") or {}).get(n), r))
        for n, r in self.online:
            x.append(_unit(_number((p.get("online") or {}).get(n)), r))
        return x

    def matrix(self, points: list[dict]) -> np.ndarray:
        width = len(self.names())
        return np.array([self(p) for p in points], dtype=float).reshape(len(points), width)


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _variant(strategy, k, order, online=None) -> str:
    if strategy == "online":  # each method its own variant: they move weights differently
        return f"online:{(online or {}).get('method', '?')}"
    if strategy == "dmt":
        return "dmt"  # k is its own coordinate, so nearby k share what they learn
    if strategy == "sequential" and order:
        return "sequential:" + ">".join(order)
    return str(strategy)


def _variants(space: SearchSpace) -> list[str]:
    out = []
    for name in space.strategies:
        opts = space.options(name)
        if name == "dmt":
            out.append("dmt")
        elif name == "sequential" and opts.orders:
            out.extend(_variant(name, None, o) for o in opts.orders)
        elif name == "online":
            from ..config.space import ONLINE_METHODS

            out.extend(f"online:{m}" for m in opts.methods or ONLINE_METHODS)
        else:
            out.append(name)
    return out


def _unit(value, r) -> float:
    if value is None:
        return 0.0
    if r.choices is not None:
        lo, hi = min(r.choices), max(r.choices)
    else:
        lo, hi = r.low, r.high
    if r.log and lo > 0:
        value, lo, hi = math.log(value), math.log(lo), math.log(hi)
    return (value - lo) / (hi - lo) if hi > lo else 0.0


def fit_gp(X: np.ndarray, y: np.ndarray, seed: int = 0, centred: bool = True, *, keep=None):
    """An ARD Matérn-5/2 GP with a learned noise level. The kernel's hyperparameters are fitted
    on at most MAX_FIT_POINTS trials (a seeded subset), then the GP is conditioned on all of
    them with those hyperparameters fixed: a sweep of a thousand trials pays one Cholesky
    factorisation per refit, not a thousand-point likelihood optimisation. `centred=False`: the
    prior mean is 0, not the data's mean (a residual on a proxy: far from the target trials,
    the proxy's prediction stands, instead of a shift learned from a few nearby trials).
    `keep`: an earlier fit's kernel whose hyperparameters are kept, the GP only conditioned on
    the data (the sampler's flat cost: search/surrogate.py); one for other coordinates is not.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    d = X.shape[1]
    if keep is not None and _dims(keep) == d:
        return _with_noise(GaussianProcessRegressor(keep, normalize_y=centred,
                                                    optimizer=None).fit(X, y), y, centred)
    kernel = ConstantKernel(1.0 if centred else max(float(np.var(y)), 1e-4), (1e-5, 1e3)) * \
        Matern(length_scale=np.full(d, 0.5), length_scale_bounds=(LENGTH_SCALE_MIN, 1e2),
               nu=2.5) + WhiteKernel(1e-2, (1e-6, 1.0))
    rows = np.arange(len(y))
    if len(y) > MAX_FIT_POINTS:
        rows = np.random.default_rng(seed).choice(len(y), MAX_FIT_POINTS, replace=False)
    with warnings.catch_warnings():
        # A length scale at its bound (a coordinate that does not matter) is an answer here,
        # not a problem to print for every refit.
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp = GaussianProcessRegressor(kernel, normalize_y=centred, n_restarts_optimizer=0,
                                      random_state=seed).fit(X[rows], y[rows])
        if len(rows) < len(y):
            gp = GaussianProcessRegressor(gp.kernel_, normalize_y=centred,
                                          optimizer=None).fit(X, y)
    return _with_noise(gp, y, centred)


def _with_noise(gp, y: np.ndarray, centred: bool):
    """`gp` with `noise_var_`: the learned observation noise in the scores' own units (the
    WhiteKernel's level, fitted on scores scaled to unit spread when `centred`)."""
    white = getattr(gp.kernel_, "k2", None)
    level = float(getattr(white, "noise_level", 0.0))
    scale = float(np.std(y)) if centred and len(y) else 1.0
    gp.noise_var_ = level * (scale if scale > 0 else 1.0) ** 2
    return gp


def _gp_predict(gp, X: np.ndarray, observed: bool) -> tuple[np.ndarray, np.ndarray]:
    """The GP's mean and standard deviation at X: of the ability itself (its mean over seeds),
    or, `observed`, of what one more trial would measure there (the noise added). A kernel
    with a WhiteKernel predicts the latter; the search wants the former: with the noise in
    it, a point just measured stays as uncertain as the noise, and EHVI kept proposing copies
    of the best trial (6 of 12 trials within 0.05 of one mixture in the transfer benchmark)."""
    m, s = gp.predict(X, return_std=True)
    if observed:
        return m, s
    return m, np.sqrt(np.maximum(s ** 2 - getattr(gp, "noise_var_", 0.0), 1e-12))


def _dims(kernel) -> int | None:
    """How many coordinates a kernel of fit_gp's shape has length scales for."""
    try:
        return len(np.atleast_1d(kernel.k1.k2.length_scale))
    except AttributeError:
        return None


@dataclass
class AbilityModel:
    """One ability: proxy GP (prior mean) × ρ + residual GP on the target trials."""

    proxy: object | None
    residual: object | None
    rho: float
    offset: float           # residual mean while there are too few target trials for a GP
    spread: float           # widens the prediction while no target trial says how it transfers

    def predict(self, X: np.ndarray, Xp: np.ndarray | None = None, observed: bool = False
                ) -> tuple[np.ndarray, np.ndarray]:
        """At target points `X`; `Xp`: the same points as the proxy GP's inputs (`X` itself
        when None; see Surrogate._proxy_inputs); `observed`: see Surrogate.predict."""
        mean, var = np.zeros(len(X)), np.zeros(len(X))
        if self.proxy is not None:
            m, s = _gp_predict(self.proxy, X if Xp is None else Xp, observed)
            mean, var = self.rho * m, (self.rho * s) ** 2
        if self.residual is not None:
            m, s = _gp_predict(self.residual, X, observed)
            mean, var = mean + m, var + s ** 2
        else:
            mean, var = mean + self.offset, var + self.spread ** 2
        return mean, np.sqrt(np.maximum(var, 1e-12))

    def kernels(self) -> dict:
        """The fitted kernels, to start (or keep) the next refit's from."""
        return {name: gp.kernel_ for name, gp in (("proxy", self.proxy),
                                                   ("residual", self.residual)) if gp is not None}


def _fit_ability(Xp, yp, Xt, yt, seed: int, keep: dict | None = None, *,
                 to_proxy=lambda X: X) -> AbilityModel:
    keep = keep or {}
    proxy = fit_gp(Xp, yp, seed, keep=keep.get("proxy")) if len(yp) >= 2 else None
    prior = proxy.predict(to_proxy(Xt)) if proxy is not None and len(yt) else np.zeros(len(yt))
    rho = 1.0 if proxy is not None else 0.0
    if proxy is not None and len(yt) >= MIN_TARGET_FOR_RHO and np.std(prior) > 1e-9:
        slope = np.polyfit(prior, yt, 1)[0]
        rho = float(np.clip(slope, 0.25, 4.0))
    resid = yt - rho * prior
    residual = fit_gp(Xt, resid, seed, centred=proxy is None, keep=keep.get("residual")) \
        if len(yt) >= 3 else None
    spread = float(np.std(yp)) if len(yp) else 1.0
    if len(yt) >= 2:
        spread = max(float(np.std(resid)), 1e-3)
    return AbilityModel(proxy, residual, rho, float(resid.mean()) if len(yt) else 0.0, spread)


class Surrogate:
    """Per-ability models over a space, fitted to records of any fidelity; predictions are
    for the target fidelity. `keep`: an earlier surrogate's `kernels` (per objective), whose
    hyperparameters it keeps, only conditioning on these records (None: it fits them)."""

    def __init__(self, space: SearchSpace, objectives: list[str], records: list[Record],
                 seed: int = 0, *, keep: dict | None = None):
        if not records:
            raise ValueError("the surrogate needs at least one finished trial")
        self.objectives, self.records = list(objectives), list(records)
        self.encoder = Encoder(space, records)
        target = [r for r in records if r.fidelity >= TARGET_FIDELITY]
        proxy = [r for r in records if r.fidelity < TARGET_FIDELITY]
        Xt = self.encoder.matrix([r.point for r in target])
        Xp = self.encoder.matrix([r.point for r in proxy])
        # Coordinates every proxy trial shares (a proxy sweep at one amount, one strategy) say
        # nothing to the proxy GP: their length scales stay where the fit started, and asked
        # at the target's value it answered as if far from every proxy trial, shrunk to its
        # mean (the transfer benchmark's proxy at 1,000 samples, asked at 4,000: 7× less spread
        # than it measured). The proxy GP is asked at the proxies' own value instead, as
        # Kennedy–O'Hagan's proxy(x) is the cheap run of the same design; ρ and the residual
        # carry what changes with the fidelity.
        self._pinned = (np.ptp(Xp, axis=0) == 0) if len(proxy) >= 2 else \
            np.zeros(Xp.shape[1], bool)
        self._pinned_at = Xp[0] if len(proxy) else np.zeros(Xp.shape[1])
        if len({r.fidelity for r in proxy}) > 1:  # several proxies: fidelity is an input
            Xp = np.column_stack([Xp, [r.fidelity for r in proxy]])
            self._proxy_fidelity = True
        else:
            self._proxy_fidelity = False
        self.models = {o: _fit_ability(Xp, np.array([r.values[o] for r in proxy]), Xt,
                                       np.array([r.values[o] for r in target]), seed,
                                       (keep or {}).get(o), to_proxy=self._proxy_inputs)
                       for o in self.objectives}
        self.n_target, self.n_proxy = len(target), len(proxy)

    @property
    def kernels(self) -> dict[str, dict]:
        """Per objective, its models' fitted kernels (what a later refit may `keep`)."""
        return {o: m.kernels() for o, m in self.models.items()}

    def predict(self, points: list[dict], observed: bool = False
                ) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std), each (points, objectives), at the target fidelity: the std of each
        ability's mean there, or, `observed`, of what one trial would measure (the noise the
        GPs learned added; what a held-out trial is compared with)."""
        X = self.encoder.matrix(points)
        Xp = self._proxy_inputs(X)
        means, stds = [], []
        for o in self.objectives:
            m, s = self.models[o].predict(X, Xp, observed)
            means.append(m)
            stds.append(s)
        return np.column_stack(means), np.column_stack(stds)

    def _proxy_inputs(self, X: np.ndarray) -> np.ndarray:
        """Target points as the proxy GP's inputs: the coordinates every proxy trial shared
        pinned to their value, and, with several proxy fidelities (an input then), asked at
        the target's fidelity (1)."""
        Xp = X.copy()
        Xp[:, self._pinned] = self._pinned_at[self._pinned]
        if self._proxy_fidelity:
            Xp = np.column_stack([Xp, np.ones(len(X))])
        return Xp


def seed_noise(records: list[Record], objectives: list[str]) -> dict[str, float | None]:
    """The noise between seed repeats: the pooled within-point standard deviation of target
    trials that ran the same point with different seeds (None without repeats)."""
    groups: dict[tuple, list[Record]] = {}
    for r in records:
        if r.fidelity >= TARGET_FIDELITY:
            groups.setdefault(point_key(r.point), []).append(r)
    out = {}
    for o in objectives:
        ss, dof = 0.0, 0
        for members in groups.values():
            if len(members) > 1:
                v = np.array([m.values[o] for m in members])
                ss, dof = ss + float(((v - v.mean()) ** 2).sum()), dof + len(v) - 1
        out[o] = math.sqrt(ss / dof) if dof else None
    return out


def interval_noise(records: list[Record], objectives: list[str]) -> dict[str, float | None]:
    """The evaluation noise the trials' own 95% intervals state: their mean half-width / 1.96."""
    out = {}
    for o in objectives:
        halves = [r.intervals[o] for r in records if o in r.intervals]
        out[o] = float(np.mean(halves)) / 1.96 if halves else None
    return out
