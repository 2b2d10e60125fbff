"""Findings computed from the rows, never written by hand: what scales with amount, where the
ratio matters, where mixing helps or hurts, how strategies compare, and how sure the data lets us
be. Each finding states its test and numbers and claims only what the test supports (the tests
live in stats.py):

- a trend ("rises"/"falls") only when Spearman's two-sided p < stats.ALPHA, else "no evidence
  of a trend";
- a domain's amount trend only from the trials that trained that domain alone; the trend over
  every trial is labelled as pooled over all mixtures;
- a leader only when its 95% interval is apart from the runner-up's; equal scores never have one;
  without intervals (older runs) the difference is said to be untested;
- an ability at the floor or ceiling in the trials a finding reads is flagged instead."""

from __future__ import annotations

import statistics
from typing import NamedTuple

from ..config.abilities import score_range
from . import stats
from .stats import Estimate, compare, mean_interval, pinned, ranked, separated, spearman

MIN_POINTS = 4        # fewer trials than this: no trend is tested
LISTED = 6            # estimates named in a "within noise" list before "and N more"
METHOD = stats.METHOD  # the sentence that tells a reader how the findings decide


class Cell(NamedTuple):
    """One strategy's cell: mean, half the range, trials, and the interval of the mean (None
    when any of its trials has no interval)."""
    mean: float
    half_range: float
    n: int
    low: float | None
    high: float | None


def _direction(objectives, o: str) -> str:
    return objectives.get(o, "max") if isinstance(objectives, dict) else "max"


def _estimate(row, o: str, name: str | None = None) -> Estimate:
    iv = row.intervals.get(o)
    return Estimate(name or row.name, row.scores[o], *(iv[:2] if iv else (None, None)))


def _pool(rows, o: str, name: str) -> Estimate:
    """Several rows read as one (a strategy's cell, one amount): their mean and the interval of
    that mean (stats.mean_interval), or no interval when any row has none."""
    scores = [r.scores[o] for r in rows]
    iv = mean_interval(scores, [r.intervals.get(o) for r in rows], score_range(o))
    return Estimate(name, statistics.fmean(scores), *(iv[:2] if iv else (None, None)))


def _count(rows) -> str:
    # a row that averages seeds is a point, not one trial
    return f"{len(rows)} {'points' if any(r.n > 1 for r in rows) else 'trials'}"


def _listed(estimates: list[Estimate]) -> str:
    named = ", ".join(f"{e.name} {e.text()}" for e in estimates[:LISTED])
    return named + (f" and {len(estimates) - LISTED} more" if len(estimates) > LISTED else "")


def _pinned_text(o: str, where: str, pin: str) -> str:
    why = (f"each score is 0 or its 95% upper bound is below {stats.FLOOR}" if pin == "floor" else
           f"each score is 1 or its 95% lower bound is above {stats.CEILING}")
    return f"{o} is at the {pin} {where} ({why}): no finding about it can be read from this sweep."


def _trend(subject: str, what: str, rows, o: str, xs) -> str:
    pin = pinned([_estimate(r, o) for r in rows])
    if pin:
        return f"{subject}: " + _pinned_text(o, f"in all {_count(rows)}", pin)
    ys = [r.scores[o] for r in rows]
    if len(xs) < MIN_POINTS or len(set(xs)) < 2:
        return (f"{subject}: too few trials to test a trend of {o} with {what} ({_count(rows)}, "
                f"{len(set(xs))} distinct values of it).")
    if len(set(ys)) < 2:
        return (f"{subject}: no evidence of a trend of {o} with {what}: it is {ys[0]:.3f} in "
                f"all {_count(rows)}.")
    rho, p = spearman(xs, ys)
    numbers = f"Spearman ρ = {rho:+.2f}, p = {p:.2g}, {_count(rows)}"
    if p < stats.ALPHA:
        return f"{subject}: {o} {'rises' if rho > 0 else 'falls'} with {what} ({numbers})."
    return f"{subject}: no evidence of a trend of {o} with {what} ({numbers})."


def amount(rows, objectives, domains=()) -> list[str]:
    """RQ1 per objective: for an ability named like a domain, its trend over the trials that
    trained that domain alone (other domains' trials would mix another question in); then the
    trend over every trial, labelled as pooled over all mixtures."""
    out = []
    for o in objectives:
        alone = [r for r in rows if r.domains_used() == [o]] if o in domains else []
        if alone:
            out.append(_trend(f"{o} trained alone (single-domain trials only)",
                              f"the amount of {o} data", alone, o, [r.total for r in alone]))
        out.append(_trend("Pooled over all mixtures", "the total amount of training data", rows,
                          o, [r.total for r in rows]))
    return out


def ratio(rows, objectives, domains) -> list[str]:
    """A domain's share against its ability, over mixed trials only: a single-domain trial has
    share 0 or 1 and answers whether to mix at all, not in what ratio."""
    mixed = [r for r in rows if len(r.domains_used()) > 1]
    totals = sorted({r.total for r in mixed})
    held = "" if len(totals) < 2 else \
        f", totals {totals[0]:.0f} to {totals[-1]:.0f}: amount is not held fixed"
    return [_trend(f"Mixed trials only{held}", f"the share of {d} data in the mixture", mixed, d,
                   [r.shares[d] for r in mixed])
            for d in domains if d in objectives and any(0 < r.shares[d] < 1 for r in mixed)]


def _gain(mid: Estimate, top: Estimate, direction: str) -> str:
    apart = separated(mid, top)
    if apart is None:
        return f"whether it still gains from {mid.name} to {top.name} is untested (no interval)"
    if not apart:
        return f"no evidence that it still gains from {mid.name} to {top.name} (intervals overlap)"
    better = top.score > mid.score if direction == "max" else top.score < mid.score
    return (f"it {'keeps improving' if better else 'gets worse'} from {mid.name} to {top.name} "
            f"(95% intervals apart)")


def scaling(rows, objectives, domains) -> list[str]:
    """RQ1's shape on single-domain trials: the score at the smallest, middle and largest
    amount (repeats pooled), and whether the largest amount is told apart from the middle one."""
    out = []
    for d in domains:
        if d not in objectives:
            continue
        alone = [r for r in rows if r.domains_used() == [d]]
        amounts = sorted({r.total for r in alone})
        if len(amounts) < 3:
            continue
        pin = pinned([_estimate(r, d) for r in alone])
        if pin:
            out.append(f"{d} trained alone: " +
                       _pinned_text(d, f"at every amount ({_count(alone)})", pin))
            continue
        at = [_pool([r for r in alone if r.total == a], d, f"{a:.0f} samples")
              for a in (amounts[0], amounts[len(amounts) // 2], amounts[-1])]
        values = ", ".join(f"{e.text()} at {e.name}" for e in at)
        gain = _gain(at[1], at[2], _direction(objectives, d))
        out.append(f"{d} trained alone: {values}; {gain}.")
    return out


def _mixing_sentence(d: str, pairs, direction: str) -> str:
    pin = pinned([e for _, mixed, alone in pairs for e in (mixed, alone)])
    if pin:
        return "Mixing the other domains in: " + _pinned_text(d, "alone and mixed", pin)
    verdicts, parts = [], []
    for n, mixed, alone in pairs:
        diff = mixed.score - alone.score
        apart = separated(mixed, alone)
        better = diff > 0 if direction == "max" else diff < 0
        verdict = ("untested" if apart is None else "within noise" if not apart else
                   "helps" if better else "hurts")
        verdicts.append(verdict)
        parts.append(f"{'+' if diff >= 0 else '−'}{abs(diff):.3f} at {n:.0f}, {mixed.text()} vs "
                     f"{alone.text()}: {verdict}")
    head = {frozenset({"helps"}): f"Mixing the other domains in helps {d}",
            frozenset({"hurts"}): f"Mixing the other domains in hurts {d}",
            frozenset({"within noise"}): f"No evidence that mixing the other domains in changes "
                                         f"{d} (intervals overlap)",
            frozenset({"untested"}): f"Mixing the other domains in: whether it helps or hurts {d} "
                                     f"is untested (no interval)",
            }.get(frozenset(verdicts), f"Mixed evidence on mixing the other domains in for {d}")
    return f"{head} (mixed − alone: {'; '.join(parts)})."


def mixing(rows, objectives, domains) -> list[str]:
    """RQ2: the same amount of a domain, alone vs in the full mixture, told apart only by
    non-overlapping intervals."""
    out = []
    full = [r for r in rows if len(r.domains_used()) == len(domains) > 1 and
            r.strategy in ("multi_task", None)]  # one mixed stage: not a staged strategy
    for d in domains:
        if d not in objectives:
            continue
        alone = {r.samples[d]: r for r in rows if r.domains_used() == [d]}
        pairs = sorted(((r.samples[d], _estimate(r, d, "mixed"),
                         _estimate(alone[r.samples[d]], d, "alone"))
                        for r in full if r.samples[d] in alone), key=lambda p: p[0])
        if pairs:
            out.append(_mixing_sentence(d, pairs, _direction(objectives, d)))
    return out


def _verdict(estimates: list[Estimate], direction: str) -> str:
    kind, who = compare(estimates, direction)
    if kind == "single":
        return f"only {who[0].name}, {who[0].text()}"
    if kind == "tie":
        return (f"no leader: {', '.join(e.name for e in who)} tie at {who[0].score:.3f}")
    if kind == "lead":
        return (f"{who[0].name} leads, {who[0].text()}, its 95% interval apart from the "
                f"runner-up {who[1].name}, {who[1].text()}")
    if kind == "untested":
        return (f"{who[0].name} scores best ({who[0].score:.3f}) ahead of {who[1].name} "
                f"({who[1].score:.3f}); the difference is untested (no interval)")
    return f"within noise: {_listed(who)} (intervals overlap)"


def _comparison(lead_in: str, o: str, estimates, rows, direction: str) -> str:
    """One comparison sentence; at the floor or ceiling it names no leader whatever the
    intervals say, since differences there are not differences in the ability."""
    pin = pinned([_estimate(r, o) for r in rows])
    if pin:
        return (f"{lead_in}: no leader ({_listed(ranked(estimates, direction))}); " +
                _pinned_text(o, f"in all {_count(rows)} compared", pin))
    return f"{lead_in}: {_verdict(estimates, direction)}."


def _strategy_name(row) -> str:
    if row.strategy == "dmt" and row.k is not None:
        return f"dmt (k={row.k:g})"
    if row.strategy == "online":  # each method its own strategy in the Table 1 layout
        return f"online ({row.params.get('online.method', '?')})"
    return row.strategy or "?"


def strategies(rows, objectives) -> tuple[list[str], dict[str, dict[str, Cell]]]:
    """The strategy table (mean, half range, trials, interval of the mean per cell) and, per
    ability, a leader only when the intervals tell it from the runner-up."""
    groups: dict[str, list] = {}
    for r in rows:
        groups.setdefault(_strategy_name(r), []).append(r)
    cells: dict[str, dict[str, Cell]] = {}
    for s, members in groups.items():
        for o in objectives:
            scores = [r.scores[o] for r in members]
            pooled = _pool(members, o, s)
            cells.setdefault(s, {})[o] = Cell(pooled.score, (max(scores) - min(scores)) / 2,
                                              len(scores), pooled.low, pooled.high)
    if len(cells) < 2:
        return [], cells
    out = []
    for o in objectives:
        estimates = [Estimate(f"{s} (n={c[o].n})", c[o].mean, c[o].low, c[o].high)
                     for s, c in cells.items()]
        out.append(_comparison(f"On {o} across strategies", o, estimates, rows,
                               _direction(objectives, o)))
    return out, cells


def cell_text(cell: Cell) -> str:
    iv = "no interval" if cell.low is None else f"[{cell.low:.3f}, {cell.high:.3f}]"
    return f"{cell.mean:.3f} {iv} (n={cell.n})"


def best(rows, objectives: dict[str, str]) -> list[str]:
    """Which trial is best per objective, said only as far as the intervals allow."""
    return [_comparison(f"Best on {o}", o, [_estimate(r, o) for r in rows], rows, direction)
            for o, direction in objectives.items()] if len(rows) > 1 else []


_LABELS = {"single": "only trial", "lead": "yes: interval apart from the runner-up",
           "untested": "untested (no interval)"}


def best_verdicts(rows, objectives: dict[str, str]) -> dict[str, str]:
    """A short label per objective for the best-mixture table: is its pick told apart?"""
    out = {}
    for o, direction in objectives.items():
        estimates = [_estimate(r, o) for r in rows]
        pin = pinned(estimates)
        if pin or not estimates:
            out[o] = f"no: at the {pin}" if pin else ""
            continue
        kind, who = compare(estimates, direction)
        out[o] = (f"no: tied with {len(who) - 1} others" if kind == "tie" else
                  f"no: within noise of {len(who) - 1} others" if kind == "noise" else
                  _LABELS[kind])
    return out


def limits(rows, objectives) -> list[str]:
    """Abilities at the floor or ceiling across the whole sweep."""
    out = []
    for o in objectives:
        pin = pinned([_estimate(r, o) for r in rows])
        if pin:
            out.append(_pinned_text(o, f"in every one of the {_count(rows)}", pin))
    return out


def uncertainty(rows) -> str:
    repeated = [r for r in rows if r.n > 1]
    if not repeated:
        return ("Each point ran once, with one seed: the report cannot tell run-to-run noise "
                "from an effect. Repeat seeds (several sweeps into one experiment, read with "
                "--experiment) to measure it.")
    worst = max((s for r in repeated for s in r.spread.values()), default=0.0)
    return (f"{len(repeated)} of {len(rows)} points ran with several seeds; their standard "
            f"deviation reaches {worst:.3f}, so differences smaller than that are within noise.")


def intervals_note(rows, objectives) -> str:
    """Which scores carry a 95% interval; where none was logged, none is derived."""
    missing = {o: sum(o not in r.intervals for r in rows) for o in objectives}
    if not any(missing.values()):
        return ("Every score carries a 95% interval (Wilson for pass rates and accuracies, "
                "bootstrap over problems for averaged scores; for repeated seeds, the interval "
                "of their mean).")
    parts = [f"{o} ({'all' if k == len(rows) else k} of {len(rows)} points)"
             for o, k in missing.items() if k]
    return (f"No interval on some scores: {', '.join(parts)}, e.g. runs logged before "
            f"<ability>_ci_low/_ci_high/_n existed. None is derived for them, and comparisons "
            f"involving them are untested.")


def best_per_objective(rows, objectives: dict[str, str]) -> dict[str, object]:
    out = {}
    for o, direction in objectives.items():
        pick = max if direction == "max" else min
        out[o] = pick(rows, key=lambda r: r.scores[o])
    return out
