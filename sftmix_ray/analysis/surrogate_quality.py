"""How much the surrogate knows: its cross-validated error per ability beside the noise (between
seed repeats, stated by the trials' intervals, learned by the GP) and the spread of the data,
and how well a proxy's scores rank the target's for the mixtures both ran."""

from __future__ import annotations

import math

import numpy as np

from ..config.space import SearchSpace
from .records import TARGET_FIDELITY, Record, point_key
from .surrogate import Surrogate, interval_noise, seed_noise


def cross_validate(space: SearchSpace, objectives: list[str], records: list[Record],
                   folds: int = 5, seed: int = 0) -> dict[str, dict]:
    """K-fold over the target-fidelity trials (proxy trials always stay in training, as they
    would in a search): RMSE of the held-out predictions, and the share of held-out scores
    inside the predicted 95% interval. Repeats of one point stay in one fold, so a point is
    never predicted from its own other seed."""
    target = [r for r in records if r.fidelity >= TARGET_FIDELITY]
    proxy = [r for r in records if r.fidelity < TARGET_FIDELITY]
    keys = sorted({point_key(r.point) for r in target}, key=str)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(keys))
    fold_of = {keys[i]: n % max(2, min(folds, len(keys))) for n, i in enumerate(order)}
    errors: dict[str, list[float]] = {o: [] for o in objectives}
    inside: dict[str, list[bool]] = {o: [] for o in objectives}
    for f in sorted(set(fold_of.values())):
        held = [r for r in target if fold_of[point_key(r.point)] == f]
        train = proxy + [r for r in target if fold_of[point_key(r.point)] != f]
        if not held or not train:
            continue
        mean, std = Surrogate(space, objectives, train, seed).predict([r.point for r in held],
                                                                      observed=True)
        for j, o in enumerate(objectives):
            y = np.array([r.values[o] for r in held])
            errors[o].extend((mean[:, j] - y).tolist())
            inside[o].extend((np.abs(mean[:, j] - y) <= 1.96 * std[:, j]).tolist())
    full = Surrogate(space, objectives, records, seed) if records else None
    repeats, stated = seed_noise(records, objectives), interval_noise(target, objectives)
    out = {}
    for o in objectives:
        y = np.array([r.values[o] for r in target])
        e = np.array(errors[o])
        out[o] = {"n": len(target), "n_proxy": len(proxy),
                  "cv_rmse": float(np.sqrt(np.mean(e ** 2))) if len(e) else None,
                  "coverage95": float(np.mean(inside[o])) if inside[o] else None,
                  "data_std": float(y.std()) if len(y) else None,
                  "seed_noise_sd": repeats[o], "interval_noise_sd": stated[o],
                  "gp_noise_sd": _learned_noise(full, o)}
    return out


def _learned_noise(surrogate: Surrogate | None, objective: str) -> float | None:
    """The WhiteKernel's noise level of the target GP, in the ability's units."""
    if surrogate is None:
        return None
    model = surrogate.models[objective]
    gp = model.residual or model.proxy
    if gp is None:
        return None
    level = gp.kernel_.get_params().get("k2__noise_level")
    scale = float(np.ravel(getattr(gp, "_y_train_std", 1.0))[0])  # 1 when not normalized
    return math.sqrt(level) * scale if level is not None else None


def verdict(row: dict) -> str:
    """Whether the surrogate predicts better than the data's spread, and than the noise."""
    rmse, std = row["cv_rmse"], row["data_std"]
    if rmse is None or std is None:
        return "too few trials to tell"
    noise = next((row[k] for k in ("seed_noise_sd", "interval_noise_sd") if row[k]), None)
    parts = ["knows more than the mean" if rmse < std else "no better than the mean"]
    if noise:
        parts.append("within the noise" if rmse <= 1.5 * noise else
                     f"{rmse / noise:.1f}× the noise")
    return ", ".join(parts)


def rank_agreement(proxy: list[Record], target: list[Record],
                   objectives: list[str]) -> tuple[list[dict], dict[str, float | None]]:
    """The mixtures both ran (composition, strategy, k: a proxy with fewer samples runs the
    same composition at its own amount), their mean scores on each side, and Spearman's ρ per
    ability over them (None with fewer than 3 pairs or a constant side)."""
    from scipy.stats import spearmanr

    def means(records):
        groups: dict[tuple, list[Record]] = {}
        for r in records:
            groups.setdefault(point_key(r.point, with_amount=False), []).append(r)
        return {k: {o: float(np.mean([m.values[o] for m in v])) for o in objectives}
                for k, v in groups.items()}

    p, t = means(proxy), means(target)
    both = sorted(set(p) & set(t), key=str)
    pairs = [{"key": k, "proxy": p[k], "target": t[k]} for k in both]
    rho = {}
    for o in objectives:
        a, b = [x["proxy"][o] for x in pairs], [x["target"][o] for x in pairs]
        ok = len(pairs) >= 3 and np.std(a) > 0 and np.std(b) > 0
        rho[o] = float(spearmanr(a, b).statistic) if ok else None
    return pairs, rho
