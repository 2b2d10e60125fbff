"""The study's figures from a sweep's rows, as matplotlib figures. Each function returns None
when the sweep has no data for its question (a plot of nothing would read as an answer)."""

from __future__ import annotations

import itertools
import math

import matplotlib

matplotlib.use("Agg")  # files only; no display on clusters or CI
import matplotlib.pyplot as plt  # noqa: E402

FRONT, OTHER = "#d62728", "#7f7f7f"


def _errorbar(ax, xs, ys, errs, **kw):
    if any(e for e in errs):
        ax.errorbar(xs, ys, yerr=errs, capsize=3, **kw)
    else:
        ax.plot(xs, ys, **kw)


def pairwise(rows, objectives: list[str]):
    """Each pair of objectives, the front in red (error bars: spread over repeated seeds)."""
    pairs = list(itertools.combinations(objectives, 2))
    if not rows or not pairs:
        return None
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.2 * len(pairs), 3.8), squeeze=False)
    for ax, (a, b) in zip(axes[0], pairs):
        for front in (False, True):
            sel = [r for r in rows if r.front == front]
            if not sel:
                continue
            ax.errorbar([r.scores[a] for r in sel], [r.scores[b] for r in sel],
                        xerr=[r.spread.get(a, 0) for r in sel],
                        yerr=[r.spread.get(b, 0) for r in sel], fmt="o",
                        color=FRONT if front else OTHER, alpha=0.9 if front else 0.5,
                        label="Pareto front" if front else "other trials")
        ax.set_xlabel(a)
        ax.set_ylabel(b)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Abilities against each other")
    fig.tight_layout()
    return fig


def parallel(rows, objectives: list[str], domains: list[str]):
    """From mixture (share per domain, total samples, strategy) to abilities, one line a trial;
    every axis scaled to [0, 1] by its own range."""
    if len(rows) < 2:
        return None
    strategies = sorted({r.strategy or "?" for r in rows})
    axes_names = [f"share {d}" for d in domains] + ["log samples", "strategy"] + objectives

    def raw(r):
        return ([r.shares[d] for d in domains] + [math.log10(max(r.total, 1)),
                                                  strategies.index(r.strategy or "?")] +
                [r.scores[o] for o in objectives])

    table = [raw(r) for r in rows]
    lo = [min(c) for c in zip(*table)]
    hi = [max(c) for c in zip(*table)]
    fig, ax = plt.subplots(figsize=(1.3 * len(axes_names) + 2, 4.2))
    for r, vals in sorted(zip(rows, table), key=lambda t: t[0].front):
        ys = [(v - a) / (b - a) if b > a else 0.5 for v, a, b in zip(vals, lo, hi)]
        ax.plot(range(len(ys)), ys, color=FRONT if r.front else OTHER,
                alpha=0.9 if r.front else 0.35, lw=2 if r.front else 1)
    ax.set_xticks(range(len(axes_names)), axes_names, rotation=30, ha="right")
    ax.set_yticks([])
    for x in range(len(axes_names)):
        ax.axvline(x, color="black", lw=0.5)
    ax.set_title(f"Mixture to abilities (red: front; strategies: {', '.join(strategies)})")
    fig.tight_layout()
    return fig


def single_domain(rows, domains: list[str]) -> dict[str, list]:
    return {d: sorted((r for r in rows if r.domains_used() == [d]), key=lambda r: r.total)
            for d in domains}


def scaling(rows, objectives: list[str], domains: list[str]):
    """RQ1: each ability against the amount of one domain trained alone (log x)."""
    alone = {d: rs for d, rs in single_domain(rows, domains).items()
             if len({r.total for r in rs}) >= 2}
    if not alone:
        return None
    fig, axes = plt.subplots(1, len(objectives), figsize=(4.2 * len(objectives), 3.6),
                             squeeze=False)
    for ax, o in zip(axes[0], objectives):
        for d, rs in alone.items():
            _errorbar(ax, [r.total for r in rs], [r.scores[o] for r in rs],
                      [r.spread.get(o, 0) for r in rs], marker="o", label=f"{d} alone")
        ax.set_xscale("log")
        ax.set_xlabel("training samples")
        ax.set_ylabel(o)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Scaling: ability against data amount, one domain at a time")
    fig.tight_layout()
    return fig


def mixed_vs_single(rows, objectives: list[str], domains: list[str]):
    """RQ2: an ability against its own domain's amount, trained alone or mixed with every other
    domain. Ability and domain are paired by name (math with math, ...)."""
    paired = [d for d in domains if d in objectives]
    alone = single_domain(rows, domains)
    mixed = sorted((r for r in rows if len(r.domains_used()) == len(domains) > 1 and
                    r.strategy in ("multi_task", None)), key=lambda r: r.total)
    usable = [d for d in paired if alone[d] and mixed]
    if not usable:
        return None
    fig, axes = plt.subplots(1, len(usable), figsize=(4.2 * len(usable), 3.6), squeeze=False)
    for ax, d in zip(axes[0], usable):
        for label, rs in (("alone", alone[d]), ("mixed", mixed)):
            rs = sorted(rs, key=lambda r: r.samples[d])
            _errorbar(ax, [r.samples[d] for r in rs], [r.scores[d] for r in rs],
                      [r.spread.get(d, 0) for r in rs], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_xlabel(f"{d} samples")
        ax.set_ylabel(d)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Mixing: each ability trained alone vs in the full mixture")
    fig.tight_layout()
    return fig


def dmt_tradeoff(rows, objectives: list[str]):
    """DMT's k: how much specialized data stage 2 replays, against every ability."""
    dmt = sorted((r for r in rows if r.strategy == "dmt" and r.k), key=lambda r: r.k)
    if len({r.k for r in dmt}) < 2:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    by_k: dict[float, list] = {}
    for r in dmt:
        by_k.setdefault(r.k, []).append(r)
    ks = sorted(by_k)
    for o in objectives:
        ax.plot(ks, [sum(r.scores[o] for r in by_k[k]) / len(by_k[k]) for k in ks], marker="o",
                label=o)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (fraction of specialized data replayed in stage 2)")
    ax.set_ylabel("score (mean over trials at that k)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("DMT trade-off")
    fig.tight_layout()
    return fig


def online_weights(trajectories: dict, most: int = 8):
    """The domain weights of each online trial (up to `most`) against the optimizer step."""
    items = [(name, t) for name, t in trajectories.items() if any(t.values())][:most]
    if not items:
        return None
    cols = min(len(items), 2)
    rows = -(-len(items) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.0 * rows), squeeze=False)
    for ax, (name, t) in zip(axes.flat, items):
        for d, points in t.items():
            if points:
                ax.plot([s for s, _ in points], [w for _, w in points], marker=".", label=d)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("domain weight")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(items):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def all_figures(rows, objectives: list[str], domains: list[str]) -> dict[str, object]:
    figs = {"pairwise": pairwise(rows, objectives),
            "parallel": parallel(rows, objectives, domains),
            "scaling": scaling(rows, objectives, domains),
            "mixed_vs_single": mixed_vs_single(rows, objectives, domains),
            "dmt_k": dmt_tradeoff(rows, objectives)}
    return {k: v for k, v in figs.items() if v is not None}
