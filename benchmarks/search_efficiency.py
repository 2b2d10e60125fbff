"""How fast each search finds the front: hypervolume after N trials for every Optuna sampler a sweep
can name (TPE, NSGA-II, GP), random search, ours (`search.algorithm: surrogate`), RegMix and
grids, on a surrogate of the lab's landscape.

    python benchmarks/search_efficiency.py [--landscape benchmarks/data/lab_landscape.json]
        [--lattice 6] [--amounts 3] [--budget 0.25] [--seeds 5]
        [--samplers tpe,nsga2,gp,random,surrogate,regmix] [--allow-stale-lab]

The landscape is measured, not invented: `sweeps/landscape_lab.yaml` runs the quickstart's lab on
a grid (ratio lattice in thirds × 2 amounts × {multi-task, DMT k=1/16}, three seeds per point);
`export_landscape.py` writes its scores to JSON, naming the lab; `landscape.py` refuses a file
measured on another lab (`--allow-stale-lab` runs on it anyway, loudly), averages each point's
seeds, fits a smoothing spline per strategy and ability and prints how well it fits
(leave-one-out error against the spread of the data) and each point's noise. To measure it
again and regenerate these figures (hours on 2 cores):

    sftmix run sweeps/landscape_lab.yaml && python benchmarks/export_landscape.py
    python benchmarks/search_efficiency.py && python benchmarks/transfer.py

Every search runs the sweep's own code: the space is a `SearchSpace`, trials are suggested by
`DefineByRun` (stick-breaking ratios, log amount, strategy with DMT's k) and the samplers come from
`make_sampler`, as `sftmix run` builds them. Only the trial is replaced by the surrogate: a trial
observes the seed-averaged spline plus a draw of the measured seed noise (none without seed
repeats), and a search is scored on the seed-averaged spline at the points it chose, so a lucky
draw is not a win. RegMix (`search/regmix.py`) spends the first half of its trials on random
Dirichlet mixtures, fits its regression to them and runs the top-k averages for the rest.

The full grid is the simplex lattice in 1/`--lattice` steps × `--amounts` log-spaced amounts ×
every strategy variant (it contains every measured point). Each sampler gets `--budget` of the
grid's trials; the hypervolume (moocore, reference 0 for every ability) is reported as a ratio of
the full grid's, median and worst over `--seeds` seeds, at several trial counts. Goal: ≥ 0.95 of
the full grid's hypervolume with ≤ 25% of its trials, and more than random search at equal trials.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from landscape import Landscape, Surrogate, observe  # noqa: E402

from sftmix_ray.analysis.records import Record  # noqa: E402
from sftmix_ray.config import SearchConfig  # noqa: E402
from sftmix_ray.config.space import SearchSpace  # noqa: E402
from sftmix_ray.pareto import hypervolume_of  # noqa: E402
from sftmix_ray.search.regmix import RegMix, dirichlet_points, regmix_propose  # noqa: E402
from sftmix_ray.search.sampling import DefineByRun  # noqa: E402
from sftmix_ray.search.searcher import make_sampler  # noqa: E402


def hypervolume(values: np.ndarray) -> float:
    """Every ability maximized, against the reference 0 for each."""
    return hypervolume_of(values, [True] * values.shape[1], [0.0] * values.shape[1])


def hindsight(values: np.ndarray, budgets: list[int]) -> list[float]:
    """The most hypervolume N of these points reach, for each N in `budgets`, as a share of all
    of them: a greedy pick in hindsight (each adds the point of largest gain, knowing the truth),
    within 1 − 1/e of the best N-subset and in practice at it. No search can beat it on the grid's
    own points, so it says how much of a goal is reachable with N trials at all."""
    total, chosen, out = hypervolume(values), [], {}
    if total <= 0:  # every point on a reference axis: there is nothing to reach
        return [1.0] * len(budgets)
    for n in range(1, max(budgets) + 1):
        rest = [i for i in range(len(values)) if i not in chosen]
        if not rest:
            break
        chosen.append(max(rest, key=lambda i: hypervolume(values[chosen + [i]])))
        out[n] = hypervolume(values[chosen]) / total
    return [out.get(n, 1.0) for n in budgets]


def bench_space(land: Landscape) -> SearchSpace:
    strategies: dict = {}
    for strategy, k in land.variants().values():
        if strategy == "dmt":
            strategies.setdefault("dmt", {"k": []})["k"].append(k)
        else:
            strategies[strategy] = {}
    lo, hi = land.amount_range
    return SearchSpace.model_validate({
        "domains": land.domains, "specialized": [d for d in land.domains if d != "general"],
        "ratio": {"kind": "simplex"}, "amount": {"low": lo, "high": hi, "log": True},
        "strategies": strategies})


def lattice(n_domains: int, steps: int) -> list[tuple[float, ...]]:
    return [tuple(c / steps for c in combo)
            for combo in itertools.product(range(steps + 1), repeat=n_domains)
            if sum(combo) == steps]


def grid_points(land: Landscape, steps: int, n_amounts: int) -> list[dict]:
    lo, hi = land.amount_range
    amounts = sorted({round(math.exp(v)) for v in np.linspace(math.log(lo), math.log(hi),
                                                              n_amounts)})
    return [{"ratio": dict(zip(land.domains, r)), "amount": a, "strategy": s, "k": k}
            for r in lattice(len(land.domains), steps) for a in amounts
            for s, k in land.variants().values()]


def run_sampler(algorithm: str, seed: int, space: SearchSpace, surrogate: Surrogate,
                trials: int, objectives: list[str], noise: dict | None = None) -> np.ndarray:
    """The seed-averaged truth at each point the sampler chose, in trial order; the sampler
    itself sees `observe`'s noisy draws."""
    import optuna

    if algorithm == "regmix":
        return run_regmix(seed, space, surrogate, trials, objectives, noise or {})
    sampler = make_sampler(SearchConfig(space="-", algorithm=algorithm, seed=seed,
                                        num_samples=trials,
                                        objectives={o: "max" for o in objectives},
                                        **({"batch_size": 1} if algorithm == "surrogate"
                                           else {})), space)
    study = optuna.create_study(directions=["maximize"] * len(objectives), sampler=sampler)
    define, rng, truth = DefineByRun(space), np.random.default_rng(10_000 + seed), []

    def objective(trial):
        point = define(trial)["point"]  # the complete point a trial's config carries
        truth.append(surrogate(point))
        return tuple(observe(truth[-1], noise or {}, objectives, rng))

    study.optimize(objective, n_trials=trials)
    return np.array(truth)


def run_regmix(seed: int, space: SearchSpace, surrogate: Surrogate, trials: int,
               objectives: list[str], noise: dict) -> np.ndarray:
    """RegMix in one setting: half the trials random Dirichlet mixtures (its proxies), the rest
    the top-k averages its regression predicts best."""
    rng = np.random.default_rng(10_000 + seed)
    explore = dirichlet_points(space, (trials + 1) // 2, rng)
    records = [Record(p, dict(zip(objectives, observe(surrogate(p), noise, objectives, rng))))
               for p in explore]
    model = RegMix(space, objectives, records, seed=seed)
    chosen = explore + regmix_propose(model, {o: "max" for o in objectives},
                                      trials - len(explore), seed=seed)
    return np.array([surrogate(p) for p in chosen])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--landscape", type=Path,
                    default=ROOT / "benchmarks" / "data" / "lab_landscape.json")
    ap.add_argument("--lattice", type=int, default=6, help="full grid: simplex steps of 1/N")
    ap.add_argument("--amounts", type=int, default=3, help="full grid: log-spaced amounts")
    ap.add_argument("--budget", type=float, default=0.25, help="sampler trials / grid trials")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--samplers", default="tpe,nsga2,gp,random,surrogate,regmix")
    ap.add_argument("--allow-stale-lab", action="store_true",
                    help="run on a landscape measured on another lab than the current one")
    args = ap.parse_args()

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    land = Landscape.load(args.landscape, allow_stale_lab=args.allow_stale_lab)
    surrogate, noise = Surrogate(land), land.noise()
    objectives = land.objectives
    print(f"landscape: {len(land.rows)} measured lab trials at {len(land.points())} points, "
          f"variants "
          f"{', '.join(land.variants())}; amounts {land.amount_range[0]}–{land.amount_range[1]}")
    print("surrogate fit (leave-one-out RMSE vs the data's standard deviation):")
    for f in surrogate.fit_report:
        print(f"  {f['variant']:>14} {f['objective']:>8}: LOO RMSE {f['loo_rmse']:.3f} vs std "
              f"{f['data_std']:.3f} (n={f['n']}, smoothing {f['smoothing']:g})")
    print("\n".join(land.noise_lines()))

    full = grid_points(land, args.lattice, args.amounts)
    grid_values = np.array([surrogate(p) for p in full])
    grid_hv = hypervolume(grid_values)
    budget = max(1, math.floor(args.budget * len(full)))
    coarse = grid_points(land, 3, 2)
    coarse_hv = hypervolume(np.array([surrogate(p) for p in coarse]))
    print(f"\nfull grid: {len(full)} trials (lattice 1/{args.lattice} × {args.amounts} amounts × "
          f"{len(land.variants())} strategies), hypervolume {grid_hv:.5f}")
    print(f"the measured grid (lattice 1/3 × 2 amounts): {len(coarse)} trials, "
          f"{coarse_hv / grid_hv:.3f} of the full grid's hypervolume")

    checkpoints = sorted({max(1, budget // 4), max(1, budget // 2), budget})
    print("the best N of the full grid's points, picked in hindsight (the most N grid trials "
          "reach): " + ", ".join(f"N={n} {v:.3f}" for n, v in
                                 zip(checkpoints, hindsight(grid_values, checkpoints))))
    space = bench_space(land)
    results: dict[str, np.ndarray] = {}
    print(f"\nhypervolume / full grid's after N trials (median [worst] of {args.seeds} seeds):")
    print(f"{'search':>9} " + " ".join(f"{'N=' + str(n):>14}" for n in checkpoints) + "   s/run")
    for algorithm in args.samplers.split(","):
        t0 = time.perf_counter()
        curves = []
        for seed in range(args.seeds):
            values = run_sampler(algorithm, seed, space, surrogate, max(checkpoints), objectives,
                                 noise)
            curves.append([hypervolume(values[:n]) / grid_hv for n in checkpoints])
        results[algorithm] = np.array(curves)
        seconds = (time.perf_counter() - t0) / args.seeds
        print(f"{algorithm:>9} " + " ".join(
            f"{np.median(c):>7.3f} [{c.min():.3f}]" for c in results[algorithm].T)
            + f"   {seconds:5.1f}", flush=True)

    at = checkpoints.index(budget)
    print(f"\nat {budget} trials ({budget / len(full):.0%} of the full grid's {len(full)}):")
    random_median = np.median(results["random"][:, at]) if "random" in results else None
    for algorithm, curves in results.items():
        median, worst = float(np.median(curves[:, at])), float(curves[:, at].min())
        verdict = [f"median {median:.3f}, worst {worst:.3f} of the grid's hypervolume "
                   f"({'meets' if median >= 0.95 else 'misses'} ≥ 0.95)"]
        if random_median is not None and algorithm != "random":
            verdict.append(f"{median / random_median:.3f}× random search's median "
                           f"({'better' if median > random_median else 'not better'})")
        print(f"  {algorithm:>9}: " + "; ".join(verdict))
    if land.stale:
        print(f"\nWARNING: {land.stale}")


if __name__ == "__main__":
    main()
