"""Does a cheap proxy sweep save target trials? The share of the target grid's hypervolume reached
with 4, 8 and 12 target trials by the surrogate search seeded from a proxy sweep, by TPE from
scratch and by random search (and, as an ablation, the surrogate search without the proxy).

    python benchmarks/transfer.py [--seeds 5] [--lattice 10] [--budgets 4,8,12]

Proxy and target are both *measured* lab settings, from `benchmarks/data/lab_landscape.json`
(the quickstart's model, data and training; `sweeps/landscape_lab.yaml`):
- target: the quickstart's setting at 4,000 training samples, a thin-plate spline per strategy and
  ability (smoothing by leave-one-out, as in `landscape.py`) fitted to the 20 trials measured at
  4,000 samples only (10 ratios × {multi-task, DMT k=1/16}); the target grid is the simplex
  lattice in 1/`--lattice` steps × both strategies at 4,000 samples.
- proxy: a quarter of the data, the 20 trials measured at 1,000 samples (same ratios and
  strategies): a proxy sweep as it was measured, with its own evaluation noise, entering the
  surrogate at fidelity 0.25. Its training cost beside the target's is printed (measured
  train_seconds).
Nothing is shared between them but the lab itself. The target's scores are the spline's
(noiseless); every search runs the sweep's own code (`SearchSpace`, `DefineByRun`,
`make_sampler`; the surrogate search is `search.algorithm: surrogate`).
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

from landscape import Landscape, _best_smoothing, _rbf, variant  # noqa: E402
from search_efficiency import hypervolume, lattice  # noqa: E402

from sftmix_ray.analysis.records import Record  # noqa: E402
from sftmix_ray.analysis.surrogate_quality import rank_agreement  # noqa: E402
from sftmix_ray.config import SearchConfig  # noqa: E402
from sftmix_ray.config.space import SearchSpace  # noqa: E402
from sftmix_ray.search.sampling import DefineByRun  # noqa: E402
from sftmix_ray.search.searcher import make_sampler  # noqa: E402

TARGET_AMOUNT, PROXY_AMOUNT = 4000, 1000


class Target:
    """The lab at TARGET_AMOUNT samples: a spline per (strategy variant, ability) over the math
    and code shares, fitted to the trials measured at that amount."""

    def __init__(self, land: Landscape):
        self.land, self.models, self.fit = land, {}, []
        for name in land.variants():
            rows = [r for r in land.rows if r["amount"] == TARGET_AMOUNT
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


def measured(land: Landscape, amount: int, fidelity: float) -> list[Record]:
    return [Record({"ratio": r["ratio"], "amount": amount, "strategy": r["strategy"],
                    **({"k": r["k"]} if r["k"] is not None else {})},
                   {o: float(r[o]) for o in land.objectives}, fidelity,
                   run_id=f"measured-{i}")
            for i, r in enumerate(land.rows) if r["amount"] == amount]


def search(algorithm: str, seed: int, space: SearchSpace, target: Target, trials: int,
           objectives: list[str], prior: list[Record] | None, batch: int = 1) -> np.ndarray:
    import optuna

    config = SearchConfig(space="-", algorithm=algorithm, seed=seed, num_samples=trials,
                          objectives={o: "max" for o in objectives},
                          **({"batch_size": batch} if algorithm == "surrogate" else {}))
    sampler = make_sampler(config, space, prior)
    study = optuna.create_study(directions=["maximize"] * len(objectives), sampler=sampler)
    define = DefineByRun(space)
    study.optimize(lambda trial: tuple(target(define(trial)["point"])), n_trials=trials)
    return np.array([t.values for t in study.trials])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--landscape", type=Path,
                    default=ROOT / "benchmarks" / "data" / "lab_landscape.json")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--lattice", type=int, default=10)
    ap.add_argument("--budgets", default="4,8,12")
    args = ap.parse_args()

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    land = Landscape.load(args.landscape)
    objectives, target, space = land.objectives, Target(land), target_space(land)
    proxy = measured(land, PROXY_AMOUNT, 0.25)
    print("target fit (leave-one-out RMSE vs the data's standard deviation, per variant):")
    for name, obj, n, loo, std in target.fit:
        print(f"  {name:>14} {obj:>8}: {loo:.3f} vs {std:.3f} (n={n})")
    cost = {a: statistics.median(r["train_seconds"] for r in land.rows if r["amount"] == a)
            for a in (PROXY_AMOUNT, TARGET_AMOUNT)}
    print(f"\nproxy: {len(proxy)} trials measured at {PROXY_AMOUNT} samples (a quarter of the "
          f"data); median training {cost[PROXY_AMOUNT]:.0f} s vs {cost[TARGET_AMOUNT]:.0f} s "
          f"at {TARGET_AMOUNT}: the proxy sweep cost ≈ "
          f"{len(proxy) * cost[PROXY_AMOUNT] / cost[TARGET_AMOUNT]:.1f} target trials of "
          f"training")
    _, rho = rank_agreement(proxy, measured(land, TARGET_AMOUNT, 1.0), objectives)
    print("proxy vs target on the 20 mixtures both measured, Spearman ρ: " +
          ", ".join(f"{o} {'n/a' if v is None else f'{v:+.2f}'}" for o, v in rho.items()))

    variants = list(land.variants().values())
    grid = [{"ratio": dict(zip(land.domains, r)), "amount": TARGET_AMOUNT, "strategy": s,
             **({"k": k} if k is not None else {})}
            for r in lattice(len(land.domains), args.lattice) for s, k in variants]
    grid_hv = hypervolume(np.array([target(p) for p in grid]))
    budgets = [int(b) for b in args.budgets.split(",")]
    print(f"\ntarget grid: {len(grid)} trials (lattice 1/{args.lattice} × {len(variants)} "
          f"strategies at {TARGET_AMOUNT} samples); {max(budgets)} trials = "
          f"{max(budgets) / len(grid):.1%} of it")
    runs = {"surrogate + proxy": ("surrogate", proxy, 1),
            "surrogate + proxy, b4": ("surrogate", proxy, 4),
            "TPE (scratch)": ("tpe", None, 1), "random": ("random", None, 1),
            "surrogate (scratch)": ("surrogate", None, 1)}
    shares = {}
    print(f"\nshare of the target grid's hypervolume after N target trials, median [worst] of "
          f"{args.seeds} seeds:")
    print("(surrogate: one proposal per refit, as with one trial at a time; b4: batches of 4)")
    print(f"{'search':>22} " + " ".join(f"{'N=' + str(n):>15}" for n in budgets))
    for label, (algorithm, prior, batch) in runs.items():
        curves = []
        for seed in range(args.seeds):
            values = search(algorithm, seed, space, target, max(budgets), objectives, prior,
                            batch)
            curves.append([hypervolume(values[:n]) / grid_hv for n in budgets])
        shares[label] = np.array(curves)
        print(f"{label:>22} " + " ".join(f"{np.median(c):>8.3f} [{c.min():.3f}]"
                                         for c in shares[label].T), flush=True)
    verdict(shares, budgets, len(grid))


def verdict(shares: dict, budgets: list[int], grid: int) -> None:
    ok = [n for n in budgets if n <= math.floor(0.1 * grid)]
    s = shares["surrogate + proxy"]
    print(f"\ngoal: ≥ 0.95 of the grid's hypervolume with ≤ 10% of its trials "
          f"(≤ {math.floor(0.1 * grid)}), worst seed included:")
    for n in ok:
        j = budgets.index(n)
        worst = float(s[:, j].min())
        print(f"  N={n}: surrogate + proxy worst {worst:.3f} "
              f"({'meets' if worst >= 0.95 else 'misses'}); TPE median "
              f"{np.median(shares['TPE (scratch)'][:, j]):.3f}, random median "
              f"{np.median(shares['random'][:, j]):.3f}")


if __name__ == "__main__":
    main()
