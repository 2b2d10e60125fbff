"""Proxy against target in a report: for a sweep that named proxy sweeps (`search.proxies`), the
mixtures both ran, their scores on each side, and Spearman's ρ per ability: whether the cheap
sweep ranks mixtures as the target does, which is what the surrogate search counts on."""

from __future__ import annotations

from ..analysis.records import records_from_runs
from ..analysis.surrogate_quality import rank_agreement
from ..tracking.runs import RunsError, artifact_dict, load_runs

MAX_PAIRS = 30  # lines of paired scores per proxy; ρ is over all of them


def proxy_lines(tracking_uri: str, parent, runs, objectives: dict[str, str]) -> list[str]:
    sweep = artifact_dict(tracking_uri, parent.run_id, "sweep.json") if parent else None
    proxies = ((sweep or {}).get("search") or {}).get("proxies") or []
    names = list(objectives)
    target = records_from_runs(runs, names)
    lines = []
    for src in proxies:
        ref = src.get("sweep") or src.get("experiment")
        try:
            _, found = load_runs(src.get("tracking_uri") or tracking_uri, sweep=src.get("sweep"),
                                 experiment=src.get("experiment"))
        except RunsError as exc:
            lines.append(f"proxy {ref}: cannot be read ({exc})")
            continue
        proxy = records_from_runs(found, names, fidelity=src.get("fidelity", 0.5))
        pairs, rho = rank_agreement(proxy, target, names)
        told = ", ".join(f"{o} {'n/a' if v is None else f'{v:+.2f}'}" for o, v in rho.items())
        lines.append(f"proxy {ref} (fidelity {src.get('fidelity', 0.5):g}): {len(pairs)} "
                     f"mixtures ran on both sides; Spearman ρ, proxy vs target: {told} "
                     f"(n/a: fewer than 3 mixtures, or one side constant)")
        for p in pairs[:MAX_PAIRS]:
            scores = ", ".join(f"{o} {p['proxy'][o]:.3f} → {p['target'][o]:.3f}" for o in names)
            lines.append(f"{label(p['key'])}: proxy → target {scores}")
    return lines


def label(key: tuple) -> str:
    """A mixture key (analysis.records.point_key, amount left out) as a short label."""
    strategy, k, order, mixture, _, train, online = key
    parts = [strategy + (f" k={k:g}" if k is not None else "")]
    parts += [f"{n}={v}" for n, v in online]
    if order:
        parts.append(">".join(order))
    for kind, shares in mixture:
        parts.append(" ".join(f"{d}={v:g}" for d, v in shares) + ("" if kind == "ratio"
                                                                    else f" ({kind})"))
    parts += [f"{n}={v:g}" for n, v in train]
    return " ".join(parts)
