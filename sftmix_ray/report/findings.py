"""Findings computed from the rows, never written by hand: what scales with amount, where the
ratio matters, where mixing helps or hurts, how strategies and DMT's k compare, and how sure the
data lets us be. A question the sweep has too few trials for gets a sentence saying so."""

from __future__ import annotations

from scipy.stats import spearmanr

MIN_POINTS = 4        # fewer trials than this: no trend is claimed
STRONG = 0.5          # |Spearman rho| from which a trend is stated


def _trend(xs, ys) -> tuple[float, float] | None:
    if len(xs) < MIN_POINTS or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    rho, p = spearmanr(xs, ys)
    return float(rho), float(p)


def _say(subject: str, what: str, xs, ys) -> str:
    t = _trend(xs, ys)
    if t is None:
        return f"{subject}: too few distinct trials ({len(xs)}) to say how it moves with {what}."
    rho, p = t
    verb = "rises" if rho >= STRONG else "falls" if rho <= -STRONG else "shows no clear trend"
    return f"{subject} {verb} with {what} (Spearman ρ = {rho:+.2f}, p = {p:.2g}, {len(xs)} trials)."


def amount(rows, objectives) -> list[str]:
    return [_say(o, "the total amount of training data", [r.total for r in rows],
                 [r.scores[o] for r in rows]) for o in objectives]


def ratio(rows, objectives, domains) -> list[str]:
    out = []
    for d in domains:
        if d in objectives and any(0 < r.shares[d] < 1 for r in rows):
            out.append(_say(f"{d}", f"the share of {d} data in the mixture",
                            [r.shares[d] for r in rows], [r.scores[d] for r in rows]))
    return out


def scaling(rows, objectives, domains) -> list[str]:
    """RQ1 on single-domain trials: keeps improving, or plateaus (the top amount gains less than
    5% of the range over the median amount)."""
    out = []
    for d in domains:
        if d not in objectives:
            continue
        alone = sorted((r for r in rows if r.domains_used() == [d]), key=lambda r: r.total)
        amounts = sorted({r.total for r in alone})
        if len(amounts) < 3:
            continue
        mean_at = {a: sum(r.scores[d] for r in alone if r.total == a) /
                   sum(1 for r in alone if r.total == a) for a in amounts}
        lo, mid, hi = mean_at[amounts[0]], mean_at[amounts[len(amounts) // 2]], \
            mean_at[amounts[-1]]
        span = max(mean_at.values()) - min(mean_at.values()) or 1e-12
        shape = "plateaus" if (hi - mid) < 0.05 * span else "keeps improving"
        out.append(f"{d} trained alone {shape}: {lo:.3f} at {amounts[0]:.0f} samples, "
                   f"{mid:.3f} at {amounts[len(amounts) // 2]:.0f}, {hi:.3f} at "
                   f"{amounts[-1]:.0f}.")
    return out


def mixing(rows, objectives, domains) -> list[str]:
    """RQ2: the same amount of a domain, alone vs in the full mixture."""
    out = []
    full = [r for r in rows if len(r.domains_used()) == len(domains) > 1 and
            r.strategy in ("multi_task", None)]  # one mixed stage: not a staged strategy
    for d in domains:
        if d not in objectives:
            continue
        alone = {r.samples[d]: r.scores[d] for r in rows if r.domains_used() == [d]}
        pairs = sorted((r.samples[d], r.scores[d] - alone[r.samples[d]])
                       for r in full if r.samples[d] in alone)
        if not pairs:
            continue
        parts = ", ".join(f"{'+' if diff >= 0 else '−'}{abs(diff):.3f} at {n:.0f}"
                          for n, diff in pairs)
        helps = [diff for _, diff in pairs if diff > 0]
        verdict = ("helps" if len(helps) == len(pairs) else "hurts" if not helps else
                   "helps at some amounts and hurts at others")
        out.append(f"Mixing the other domains in {verdict} {d} (mixed − alone: {parts}).")
    return out


def strategies(rows, objectives) -> tuple[list[str], dict[str, dict[str, tuple]]]:
    """The strategy table (mean, spread, trials per cell) and who leads each ability."""
    table: dict[str, dict[str, list]] = {}
    for r in rows:
        name = r.strategy or "?"
        if r.strategy == "dmt" and r.k is not None:
            name = f"dmt (k={r.k:g})"
        for o in objectives:
            table.setdefault(name, {}).setdefault(o, []).append(r.scores[o])
    cells = {s: {o: (sum(v) / len(v), (max(v) - min(v)) / 2, len(v)) for o, v in by.items()}
             for s, by in table.items()}
    if len(cells) < 2:
        return [], cells
    out = []
    for o in objectives:
        best = max(cells, key=lambda s: cells[s][o][0])
        worst = min(cells, key=lambda s: cells[s][o][0])
        out.append(f"On {o}, {best} leads ({cells[best][o][0]:.3f}) and {worst} trails "
                   f"({cells[worst][o][0]:.3f}), means over {cells[best][o][2]} and "
                   f"{cells[worst][o][2]} trials.")
    return out, cells


def uncertainty(rows) -> str:
    repeated = [r for r in rows if r.n > 1]
    if not repeated:
        return ("Each point ran once, with one seed: the report cannot tell run-to-run noise "
                "from an effect. Repeat seeds (several sweeps into one experiment, read with "
                "--experiment) to measure it.")
    worst = max((s for r in repeated for s in r.spread.values()), default=0.0)
    return (f"{len(repeated)} of {len(rows)} points ran with several seeds; their standard "
            f"deviation reaches {worst:.3f}, so differences smaller than that are within noise.")


def best_per_objective(rows, objectives: dict[str, str]) -> dict[str, object]:
    out = {}
    for o, direction in objectives.items():
        pick = max if direction == "max" else min
        out[o] = pick(rows, key=lambda r: r.scores[o])
    return out
