"""The study's five findings (Dong et al. 2024), each checked against a sweep's rows with the
statistics of stats.py: a verdict is computed, never written, and says "not shown" where the data
does not show it. `sftmix report` lists the verdicts its rows can speak to; the paper-findings
benchmark runs the four lab RQ sweeps and tabulates all five beside the study's own numbers.

Verdicts: "shown" (every part of the finding holds beyond the 95% intervals), "partly shown"
(some parts hold), "not shown" (none does, or the test lacks power), "not applicable" (the rows
lack the arms the finding compares)."""

from __future__ import annotations

from dataclasses import dataclass

from .stats import ALPHA, Estimate, separated, spearman

SPECIALIZED = ("math", "code")
GENERAL = "general"

# What the study found (LLaMA 7B unless said; GSM8K / HumanEval / MT-Bench), from its text and
# Table 1, so the lab's verdict stands beside it.
STUDY = {
    "scaling": "Math and code keep improving as their data grows from 1/256 to all of it; "
               "general (MT-Bench) plateaus after about 1k samples (1/64 of ShareGPT).",
    "mixing": "Mixing the three domains helps each ability at low amounts and conflicts at "
              "high ones (e.g. math below math-alone at full data).",
    "amount": "With specialized data varied under fixed general data (and vice versa), the "
              "abilities follow the amount of their own data, not the ratio between domains.",
    "forgetting": "Sequential training (code → math → general) forgets: GSM8K 31.4 vs 47.5 for "
                  "multi-task (HumanEval 15.9 vs 14.6, MT-Bench 5.72 vs 5.76).",
    "dmt": "DMT (k = 1/256) keeps the specialized abilities better than sequential (GSM8K 41.9 "
           "vs 31.4, HumanEval 17.7 vs 15.9) and matches multi-task on general (MT-Bench 6.08 vs "
           "5.76); larger k trades general for specialized.",
}


@dataclass(frozen=True)
class Verdict:
    finding: str
    study: str
    lab: str      # the numbers the verdict rests on
    verdict: str  # shown / partly shown / not shown / not applicable


def _est(row, o: str, name: str) -> Estimate:
    iv = row.intervals.get(o)
    return Estimate(name, row.scores[o], *(iv[:2] if iv else (None, None)))


def _above(a: Estimate, b: Estimate) -> bool:
    return bool(separated(a, b)) and a.score > b.score


def _verdict(parts: list[bool]) -> str:
    return "shown" if all(parts) else "partly shown" if any(parts) else "not shown"


def _alone(rows, d: str) -> list:
    return sorted((r for r in rows
                   if r.domains_used() == [d] and r.strategy in (None, "multi_task")),
                  key=lambda r: r.samples[d])


def scaling(rows) -> Verdict:
    """(a) From single-domain trials: math and code rise with their amount (Spearman p < α and
    the largest amount's interval above the smallest's); general plateaus (it reaches its
    full-data score within noise at an amount where math and code are still below theirs)."""
    parts, lab = [], []
    curves = {d: _alone(rows, d) for d in (*SPECIALIZED, GENERAL)}
    if any(len(c) < 3 for c in curves.values()):
        return Verdict("(a) scaling", STUDY["scaling"], "needs ≥ 3 amounts of each domain alone",
                       "not applicable")
    for d in SPECIALIZED:
        c = curves[d]
        rho, p = spearman([r.samples[d] for r in c], [r.scores[d] for r in c])
        rises = rho > 0 and p < ALPHA and _above(_est(c[-1], d, "all"), _est(c[0], d, "least"))
        parts.append(rises)
        lab.append(f"{d} {c[0].scores[d]:.2f} → {c[-1].scores[d]:.2f} (ρ = {rho:+.2f}, "
                   f"p = {p:.2g})")
    g = curves[GENERAL]
    top = _est(g[-1], GENERAL, "all")
    level = next((r for r in g if separated(_est(r, GENERAL, "x"), top) is False), None)
    plateau = level is not None and level.samples[GENERAL] < g[-1].samples[GENERAL]
    if plateau:  # math and code at the same fraction of their data are still below their best
        share = level.samples[GENERAL] / g[-1].samples[GENERAL]
        still = [d for d in SPECIALIZED if any(
            abs(r.samples[d] / curves[d][-1].samples[d] - share) < 1e-6 and
            _above(_est(curves[d][-1], d, "all"), _est(r, d, "x")) for r in curves[d])]
        plateau = bool(still)
        lab.append(f"general within noise of its full-data {top.score:.2f} from "
                   f"{level.samples[GENERAL]:.0f} samples ({share:.3g} of it): "
                   f"{level.scores[GENERAL]:.2f}")
    else:
        lab.append(f"general {g[0].scores[GENERAL]:.2f} → {g[-1].scores[GENERAL]:.2f}, "
                   f"below its full-data score beyond noise at every smaller amount")
    parts.append(plateau)
    return Verdict("(a) scaling", STUDY["scaling"], "; ".join(lab), _verdict(parts))


def mixing(rows) -> Verdict:
    """(b) All three domains at one fraction vs each alone at the same amount: helps at the
    smallest amounts (some ability above alone beyond noise), conflicts at the largest (some
    ability below alone beyond noise)."""
    domains = (*SPECIALIZED, GENERAL)
    mixed = sorted((r for r in rows if sorted(r.domains_used()) == sorted(domains)
                    and r.strategy in (None, "multi_task")), key=lambda r: r.total)
    diffs = []  # (fraction rank, ability, mixed − alone, apart)
    for r in mixed:
        for d in domains:
            alone = [a for a in _alone(rows, d) if a.samples[d] == r.samples[d]]
            if alone:
                a, m = _est(alone[0], d, "alone"), _est(r, d, "mixed")
                diffs.append((r.samples[d], d, m.score - a.score, bool(separated(m, a))))
    amounts = sorted({n for n, *_ in diffs})
    if len(amounts) < 2:
        return Verdict("(b) mixing", STUDY["mixing"], "needs mixed and alone arms at ≥ 2 amounts",
                       "not applicable")
    low = [x for x in diffs if x[0] <= amounts[len(amounts) // 2 - 1]]
    high = [x for x in diffs if x[0] == amounts[-1]]
    helps = [x for x in low if x[3] and x[2] > 0]
    hurts = [x for x in high if x[3] and x[2] < 0]

    def said(xs):
        return ", ".join(f"{d} {diff:+.2f} at {n:.0f}" for n, d, diff, _ in xs) or "none"

    lab = (f"beyond noise, mixed above alone at low amounts: {said(helps)}; mixed below alone at "
           f"the largest: {said(hurts)} (of {len(diffs)} pairs)")
    return Verdict("(b) mixing", STUDY["mixing"], lab, _verdict([bool(helps), bool(hurts)]))


def amount_vs_ratio(rows) -> Verdict:
    """(c) Specialized abilities over mixtures that vary the specialized amount at two general
    amounts: a rank trend with the specialized amount, and no pair with the same specialized
    amount told apart by the ratio alone."""
    mixed = [r for r in rows if all(r.samples.get(d, 0) > 0 for d in (*SPECIALIZED, GENERAL))
             and r.strategy in (None, "multi_task")]
    generals = sorted({r.samples[GENERAL] for r in mixed})
    if len(mixed) < 4 or len(generals) < 2:
        return Verdict("(c) amount vs ratio", STUDY["amount"], "needs mixtures at ≥ 2 general "
                       "amounts", "not applicable")
    parts, lab = [], []
    for d in SPECIALIZED:  # two parts each: the amount moves it, the ratio alone does not
        rho, p = spearman([r.samples[d] for r in mixed], [r.scores[d] for r in mixed])
        by_amount: dict[float, list] = {}
        for r in mixed:
            by_amount.setdefault(r.samples[d], []).append(r)
        pairs = [(a, b) for group in by_amount.values() for i, a in enumerate(group)
                 for b in group[i + 1:]]
        apart = [(a, b) for a, b in pairs if separated(_est(a, d, "a"), _est(b, d, "b"))]
        parts += [rho > 0 and p < ALPHA, bool(pairs) and not apart]
        which = "; ".join(f"{a.scores[d]:.2f} with general {a.samples[GENERAL]:.0f} vs "
                          f"{b.scores[d]:.2f} with {b.samples[GENERAL]:.0f}" for a, b in apart)
        lab.append(f"{d}: with its amount ρ = {rho:+.2f} (p = {p:.2g}); same amount, other "
                   f"ratio: {len(apart)} of {len(pairs)} pairs apart"
                   + (f" ({which}, at {apart[0][0].samples[d]:.0f} {d})" if apart else ""))
    return Verdict("(c) amount vs ratio", STUDY["amount"], "; ".join(lab), _verdict(parts))


def _fraction(k: float) -> str:
    return f"1/{round(1 / k)}" if 0 < k < 1 and abs(1 / k - round(1 / k)) < 1e-6 else f"{k:g}"


def _by_strategy(rows) -> dict[str, list]:
    out: dict[str, list] = {}
    for r in rows:
        key = f"dmt(k={r.k:g})" if r.strategy == "dmt" and r.k is not None else r.strategy
        out.setdefault(key, []).append(r)
    return out


def forgetting(rows) -> Verdict:
    """(d) Sequential (code → math → general) below multi-task, beyond noise, on an ability
    trained before the last stage."""
    s = _by_strategy(rows)
    if "sequential" not in s or "multi_task" not in s:
        return Verdict("(d) forgetting", STUDY["forgetting"], "needs sequential and multi-task",
                       "not applicable")
    seq, mt = s["sequential"][0], s["multi_task"][0]
    lost = [d for d in SPECIALIZED if _above(_est(mt, d, "mt"), _est(seq, d, "seq"))]
    lab = ", ".join(f"{d} {seq.scores[d]:.2f} vs {mt.scores[d]:.2f}" for d in SPECIALIZED)
    below = ", ".join(lost) or "none"
    return Verdict("(d) forgetting", STUDY["forgetting"],
                   f"sequential vs multi-task: {lab}; below beyond noise: {below}",
                   _verdict([bool(lost)]))


def dmt(rows) -> Verdict:
    """(e) DMT at the smallest k above sequential on a specialized ability (and below it on
    none), not below multi-task on general; over k, specialized rises and general falls."""
    s = _by_strategy(rows)
    # by k alone: two trials at one k (the quickstart's TPE repeats k) must not be compared as
    # rows; the first at the smallest k stands for it (sort is stable)
    ks = sorted(((r.k, r) for r in rows if r.strategy == "dmt" and r.k is not None),
                key=lambda pair: pair[0])
    if not ks or "sequential" not in s or "multi_task" not in s:
        return Verdict("(e) DMT", STUDY["dmt"], "needs DMT, sequential and multi-task",
                       "not applicable")
    small, seq, mt = ks[0][1], s["sequential"][0], s["multi_task"][0]
    kept = [d for d in SPECIALIZED if _above(_est(small, d, "dmt"), _est(seq, d, "seq"))]
    worse = [d for d in SPECIALIZED if _above(_est(seq, d, "seq"), _est(small, d, "dmt"))]
    general_ok = not _above(_est(mt, GENERAL, "mt"), _est(small, GENERAL, "dmt"))
    parts = [bool(kept) and not worse, general_ok]
    lab = [f"DMT(k={_fraction(ks[0][0])}) vs sequential: " + ", ".join(
        f"{d} {small.scores[d]:.2f} vs {seq.scores[d]:.2f}" for d in SPECIALIZED),
        f"general {small.scores[GENERAL]:.2f} vs multi-task {mt.scores[GENERAL]:.2f}"]
    if len(ks) >= 3:
        spec = [sum(r.scores[d] for d in SPECIALIZED) / 2 for _, r in ks]
        rho_s, p_s = spearman([k for k, _ in ks], spec)
        rho_g, p_g = spearman([k for k, _ in ks], [r.scores[GENERAL] for _, r in ks])
        parts.append(rho_s > 0 and p_s < ALPHA and rho_g < 0 and p_g < ALPHA)
        lab.append(f"over k: specialized ρ = {rho_s:+.2f} (p = {p_s:.2g}), general "
                   f"ρ = {rho_g:+.2f} (p = {p_g:.2g})")
    return Verdict("(e) DMT", STUDY["dmt"], "; ".join(lab), _verdict(parts))


FINDINGS = (scaling, mixing, amount_vs_ratio, forgetting, dmt)


def verdicts(rows, applicable_only: bool = False) -> list[Verdict]:
    """Every finding checked on these rows (a report passes one sweep's rows; the benchmark the
    rows of all four RQ sweeps together)."""
    if not all(o in r.scores for r in rows for o in (*SPECIALIZED, GENERAL)):
        return []
    out = [f(rows) for f in FINDINGS]
    return [v for v in out if v.verdict != "not applicable"] if applicable_only else out
