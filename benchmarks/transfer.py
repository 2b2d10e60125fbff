"""Does a cheap proxy sweep save target trials? The share of the target grid's hypervolume reached
with 4, 8 and 12 target trials by the surrogate search seeded from a proxy sweep, by RegMix on
random proxies, by TPE and NSGA-II from scratch and by random search (and, as an ablation, the
surrogate search without the proxy).

    python benchmarks/transfer.py [--seeds 5] [--lattice 10] [--budgets 4,8,12]
        [--regmix-proxies N] [--allow-stale-lab]

Proxy and target are both *measured* lab settings, from `benchmarks/data/lab_landscape.json`
(the quickstart's model, data and training; `sweeps/landscape_lab.yaml`, three seeds per point;
`landscape.py` refuses a file measured on another lab unless `--allow-stale-lab`). To measure it
again and regenerate these figures (hours on 2 cores):

    sftmix run sweeps/landscape_lab.yaml && python benchmarks/export_landscape.py
    python benchmarks/transfer.py > docs/transfer_benchmark.txt

- target: the quickstart's setting at 4,000 training samples, a thin-plate spline per strategy and
  ability (smoothing by leave-one-out, as in `landscape.py`) fitted to the seed-averaged scores
  of the 20 points measured at 4,000 samples (10 ratios × {multi-task, DMT k=1/16}); the target
  grid is the simplex lattice in 1/`--lattice` steps × both strategies at 4,000 samples.
- proxy: a quarter of the data, the 20 points measured at 1,000 samples (same ratios and
  strategies), one seed each: a proxy sweep as it was measured, with its own evaluation noise,
  entering the surrogate at fidelity 0.25. Its training cost beside the target's is printed
  (measured train_seconds).
- RegMix (`search/regmix.py`): as many proxies as the measured proxy sweep (the same proxy
  cost), at random Dirichlet mixtures, scored by a spline fitted to the 1,000-sample points plus
  a draw of each ability's noise (the seed noise, or the spline's leave-one-out error without
  seed repeats); its regression's top-k averages are its target trials.
Nothing is shared between them but the lab itself. A target trial observes the seed-averaged
spline plus a draw of the seed noise (none without repeats); every search's share is the
hypervolume of the seed-averaged spline at the points it chose, so a lucky draw is not a win.
Every search runs the sweep's own code (`SearchSpace`, `DefineByRun`, `make_sampler`; the
surrogate search is `search.algorithm: surrogate`).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from landscape import Landscape, _best_smoothing, _rbf, observe, point_of, variant  # noqa: E402
from search_efficiency import hindsight, hypervolume, lattice  # noqa: E402

from sftmix_ray.analysis.records import Record  # noqa: E402
from sftmix_ray.analysis.surrogate_quality import rank_agreement  # noqa: E402
from sftmix_ray.config import SearchConfig  # noqa: E402
from sftmix_ray.config.space import SearchSpace  # noqa: E402
from sftmix_ray.search.regmix import RegMix, dirichlet_points, regmix_propose  # noqa: E402
from sftmix_ray.search.sampling import DefineByRun  # noqa: E402
from sftmix_ray.search.searcher import make_sampler  # noqa: E402

TARGET_AMOUNT, PROXY_AMOUNT = 4000, 1000


class Target:
    """The lab at `amount` samples (the target's by default): a spline per (strategy variant,
    ability) over the math and code shares, fitted to the seed-averaged points measured there."""

    def __init__(self, land: Landscape, amount: int = TARGET_AMOUNT):
        self.land, self.models, self.fit = land, {}, []
        for name in land.variants():
            rows = [r for r in land.points() if r["amount"] == amount
                    and variant(r["strategy"], r["k"]) == name]
            X = np.array([self._coords(r["ratio"]) for r in rows])
            for obj in land.objectives:
                y = np.array([r[obj] for r in rows], dtype=float)
                smoothing, loo = _best_smoothing(X, y)
                self.models[name, obj] = _rbf(X, y, smoothing)
                self.fit.append((name, obj, len(rows), loo, float(y.std())))

    def _coords(self, ratio: dict) -> list[float]:
        total = sum(ratio.values())
        return [ratio.get(d, 0.0) / total for d in self.land.domains[:-1]]

    def __call__(self, point: dict) -> list[float]:
        name = variant(point["strategy"], point.get("k"))
        x = np.array([self._coords(point["ratio"])])
        return [float(np.clip(self.models[name, o](x)[0], 0.0, 1.0))
                for o in self.land.objectives]


def target_space(land: Landscape) -> SearchSpace:
    ks = sorted({r["k"] for r in land.rows if r["strategy"] == "dmt"})
    return SearchSpace.model_validate({
        "domains": land.domains, "specialized": [d for d in land.domains if d != "general"],
        "ratio": {"kind": "simplex"}, "amount": {"choices": [TARGET_AMOUNT]},
        "strategies": {"multi_task": {}, "dmt": {"k": ks}}})


def measured(land: Landscape, amount: int, fidelity: float, averaged: bool = False
             ) -> list[Record]:
    """The points measured at `amount` as records: one seed each (the first seed measured, as a
    single sweep would see them), or `averaged` over their seeds."""
    rows = land.points() if averaged else first_seed(land)
    return [Record({"ratio": r["ratio"], "amount": amount, "strategy": r["strategy"],
                    **({"k": r["k"]} if r["k"] is not None else {})},
                   {o: float(r[o]) for o in land.objectives}, fidelity,
                   run_id=f"measured-{i}")
            for i, r in enumerate(rows) if r["amount"] == amount]


def first_seed(land: Landscape) -> list[dict]:
    """Each grid point's trial of the lowest seed (its only one without repeats)."""
    out: dict[tuple, dict] = {}
    for r in sorted(land.rows, key=lambda r: r.get("seed") or 0):
        out.setdefault(point_of(r, land.domains), r)
    return list(out.values())


def regmix_proxies(land: Landscape, space: SearchSpace, n: int, seed: int) -> list[Record]:
    """RegMix's proxy sweep: `n` random Dirichlet mixtures at the proxy's amount, each scored as
    one proxy trial would measure it (the proxy spline plus a draw of its noise)."""
    proxy, rng = proxy_spline(land), np.random.default_rng(20_000 + seed)
    noise, names = proxy_noise(land), land.objectives
    points = [{**p, "amount": PROXY_AMOUNT} for p in dirichlet_points(space, n, rng)]
    return [Record(p, dict(zip(names, observe(proxy(p), noise, names, rng))), 0.25)
            for p in points]


_PROXY: dict = {}


def proxy_spline(land: Landscape) -> Target:
    if id(land) not in _PROXY:
        _PROXY[id(land)] = Target(land, PROXY_AMOUNT)
    return _PROXY[id(land)]


def proxy_noise(land: Landscape) -> dict[str, float]:
    """One proxy trial's noise per ability: the seed noise where seeds were repeated, else the
    proxy spline's leave-one-out error (what the spline could not explain), mean over variants."""
    noise = land.noise()
    loo = {o: float(np.mean([f[3] for f in proxy_spline(land).fit if f[1] == o]))
           for o in land.objectives}
    return {o: noise[o] if noise[o] is not None else loo[o] for o in land.objectives}


def search(algorithm: str, seed: int, space: SearchSpace, target: Target, trials: int,
           objectives: list[str], prior: list[Record] | None, batch: int = 1,
           noise: dict | None = None) -> np.ndarray:
    """The seed-averaged truth at each point the search chose, in trial order; the search itself
    sees `observe`'s noisy draws."""
    import optuna

    if algorithm == "regmix":
        model = RegMix(space, objectives, prior, seed=seed)
        chosen = regmix_propose(model, {o: "max" for o in objectives}, trials, seed=seed)
        return np.array([target(p) for p in chosen])
    config = SearchConfig(space="-", algorithm=algorithm, seed=seed, num_samples=trials,
                          objectives={o: "max" for o in objectives},
                          **({"batch_size": batch} if algorithm == "surrogate" else {}))
    sampler = make_sampler(config, space, prior)
    study = optuna.create_study(directions=["maximize"] * len(objectives), sampler=sampler)
    define, rng, truth = DefineByRun(space), np.random.default_rng(10_000 + seed), []

    def objective(trial):
        truth.append(target(define(trial)["point"]))
        return tuple(observe(truth[-1], noise or {}, objectives, rng))

    study.optimize(objective, n_trials=trials)
    return np.array(truth)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--landscape", type=Path,
                    default=ROOT / "benchmarks" / "data" / "lab_landscape.json")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--lattice", type=int, default=10)
    ap.add_argument("--budgets", default="4,8,12")
    ap.add_argument("--regmix-proxies", type=int, default=None,
                    help="RegMix's random proxy trials (default: as many as the measured proxy "
                         "sweep's, the same proxy cost)")
    ap.add_argument("--allow-stale-lab", action="store_true",
                    help="run on a landscape measured on another lab than the current one")
    args = ap.parse_args()

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    land = Landscape.load(args.landscape, allow_stale_lab=args.allow_stale_lab)
    objectives, target, space = land.objectives, Target(land), target_space(land)
    proxy = measured(land, PROXY_AMOUNT, 0.25)
    print("target fit (leave-one-out RMSE vs the data's standard deviation, per variant):")
    for name, obj, n, loo, std in target.fit:
        print(f"  {name:>14} {obj:>8}: {loo:.3f} vs {std:.3f} (n={n})")
    print("\n".join(land.noise_lines()))
    noise = land.noise()
    cost = {a: statistics.median(r["train_seconds"] for r in land.rows if r["amount"] == a)
            for a in (PROXY_AMOUNT, TARGET_AMOUNT)}
    print(f"\nproxy: {len(proxy)} trials measured at {PROXY_AMOUNT} samples (a quarter of the "
          f"data); median training {cost[PROXY_AMOUNT]:.0f} s vs {cost[TARGET_AMOUNT]:.0f} s "
          f"at {TARGET_AMOUNT}: the proxy sweep cost ≈ "
          f"{len(proxy) * cost[PROXY_AMOUNT] / cost[TARGET_AMOUNT]:.1f} target trials of "
          f"training")
    _, rho = rank_agreement(measured(land, PROXY_AMOUNT, 0.25, averaged=True),
                            measured(land, TARGET_AMOUNT, 1.0, averaged=True), objectives)
    print("proxy vs target on the mixtures both measured (seed-averaged), Spearman ρ: " +
          ", ".join(f"{o} {'n/a' if v is None else f'{v:+.2f}'}" for o, v in rho.items()))

    variants = list(land.variants().values())
    grid = [{"ratio": dict(zip(land.domains, r)), "amount": TARGET_AMOUNT, "strategy": s,
             **({"k": k} if k is not None else {})}
            for r in lattice(len(land.domains), args.lattice) for s, k in variants]
    grid_values = np.array([target(p) for p in grid])
    grid_hv = hypervolume(grid_values)
    budgets = [int(b) for b in args.budgets.split(",")]
    print(f"\ntarget grid: {len(grid)} trials (lattice 1/{args.lattice} × {len(variants)} "
          f"strategies at {TARGET_AMOUNT} samples); {max(budgets)} trials = "
          f"{max(budgets) / len(grid):.1%} of it")
    ceiling = hindsight(grid_values, budgets)
    print("the best N of its points, picked in hindsight (the most N grid trials reach): "
          + ", ".join(f"N={n} {v:.3f}" for n, v in zip(budgets, ceiling)))
    n_regmix = args.regmix_proxies or len(proxy)
    print(f"RegMix: {n_regmix} random Dirichlet proxies at {PROXY_AMOUNT} samples, noise "
          + ", ".join(f"{o} {v:.3f}" for o, v in proxy_noise(land).items()))
    runs = {"surrogate + proxy": ("surrogate", lambda _: proxy, 1),
            "surrogate + proxy, b4": ("surrogate", lambda _: proxy, 4),
            "RegMix (its proxies)": ("regmix",
                                     lambda seed: regmix_proxies(land, space, n_regmix, seed), 1),
            "TPE (scratch)": ("tpe", lambda _: None, 1),
            "NSGA-II (scratch)": ("nsga2", lambda _: None, 1),
            "random": ("random", lambda _: None, 1),
            "surrogate (scratch)": ("surrogate", lambda _: None, 1)}
    shares = {}
    print(f"\nshare of the target grid's hypervolume after N target trials, median [worst] of "
          f"{args.seeds} seeds:")
    print("(surrogate: one proposal per refit, as with one trial at a time; b4: batches of 4)")
    print(f"{'search':>22} " + " ".join(f"{'N=' + str(n):>15}" for n in budgets))
    for label, (algorithm, prior, batch) in runs.items():
        curves = []
        for seed in range(args.seeds):
            values = search(algorithm, seed, space, target, max(budgets), objectives,
                            prior(seed), batch, noise)
            curves.append([hypervolume(values[:n]) / grid_hv for n in budgets])
        shares[label] = np.array(curves)
        print(f"{label:>22} " + " ".join(f"{np.median(c):>8.3f} [{c.min():.3f}]"
                                         for c in shares[label].T), flush=True)
    verdict(shares, budgets, len(grid), ceiling)
    if land.stale:
        print(f"\nWARNING: {land.stale}")


def verdict(shares: dict, budgets: list[int], grid: int, ceiling: list[float]) -> None:
    ok = [n for n in budgets if n <= math.floor(0.1 * grid)]
    s = shares["surrogate + proxy"]
    print(f"\ngoal: ≥ 0.95 of the grid's hypervolume with ≤ 10% of its trials "
          f"(≤ {math.floor(0.1 * grid)}), worst seed included:")
    for n in ok:
        j = budgets.index(n)
        worst = float(s[:, j].min())
        how = "meets it" if worst >= 0.95 else f"misses it by {0.95 - worst:.3f}"
        print(f"  N={n}: surrogate + proxy worst {worst:.3f} ({how}; the best {n} grid points "
              f"reach {ceiling[j]:.3f}); " + ", ".join(
            f"{label} {np.median(v[:, j]):.3f} [{v[:, j].min():.3f}]"
            for label, v in shares.items() if label != "surrogate + proxy"))


if __name__ == "__main__":
    main()
