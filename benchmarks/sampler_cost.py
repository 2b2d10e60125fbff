"""The sampler's own time per trial at trial 10, 100 and 1,000, side by side, with the ratios:
the surrogate's must stay flat (trial 1,000 within 2× of trial 100).

    python benchmarks/sampler_cost.py [--trials 1000] [--samplers surrogate,tpe] [--batch 8]
        [--landscape benchmarks/data/lab_landscape.json] [--allow-stale-lab]
    python benchmarks/scale.py --sampler-only ...   # the same

The sampler runs in an Optuna study in this process, as `sftmix run` builds it (`make_sampler`,
`DefineByRun` over the search benchmark's space), each trial scored by the lab landscape's
surrogate (`landscape.py`); Ray, MLflow and training are left out, so only the sampler's cost
grows or not (`scale.py` measures the whole driver). The surrogate refits once per batch, so
its cost per trial is the mean over trials 0.8·N to 1.2·N around each mark N, not one trial's
time (see `at_marks`). It is measured in CPU seconds (BLAS and OpenMP on one thread), which
neighbours on shared cores do not change, and in wall seconds beside them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

MARKS = (10, 100, 1000)


def sampler_times(algorithm: str, trials: int, batch: int, land_path: Path, allow_stale: bool,
                  seed: int = 0) -> tuple[list[float], list[float]]:
    """CPU and wall seconds the sampler spent on each trial (suggesting its parameters)."""
    import optuna
    from landscape import Landscape, Surrogate
    from search_efficiency import bench_space

    from sftmix_ray.config import SearchConfig
    from sftmix_ray.search.sampling import DefineByRun
    from sftmix_ray.search.searcher import make_sampler

    land = Landscape.load(land_path, allow_stale_lab=allow_stale)
    truth, space = Surrogate(land), bench_space(land)
    config = SearchConfig(space="-", algorithm=algorithm, seed=seed, num_samples=trials,
                          objectives={o: "max" for o in land.objectives},
                          **({"batch_size": batch} if algorithm == "surrogate" else {}))
    study = optuna.create_study(directions=["maximize"] * len(land.objectives),
                                sampler=make_sampler(config, space))
    define = DefineByRun(space)
    cpu, wall = [], []
    for _ in range(trials):
        c0, t0 = time.process_time(), time.perf_counter()
        trial = study.ask()
        point = define(trial)["point"]  # every parameter suggested: the sampler's whole work
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)
        study.tell(trial, truth(point))
    return cpu, wall


def at_marks(times: list[float], batch: int) -> dict[int, float]:
    """Mean seconds per trial over trials 0.8·N to 1.2·N around each mark N the run reached
    (at least two batches wide, and ending at the last trial for the last mark): the surrogate
    optimizes its hyperparameters each time its records grow by a quarter (HYPER_GROWTH), so
    such a window holds about one optimization at any N, and the marks compare like with like."""
    out = {}
    for mark in MARKS:
        if mark > len(times):
            continue
        lo = min(int(0.8 * mark), max(0, len(times) - 2 * batch))
        hi = min(max(int(1.2 * mark), lo + 2 * batch), len(times))
        out[mark] = float(np.mean(times[lo:hi]))
    return out


def report(results: dict[str, dict[int, float]], total: dict[str, float], what: str) -> None:
    print(f"\nsampler {what} seconds per trial (mean over trials 0.8·N to 1.2·N around each "
          f"mark N):")
    print(f"{'sampler':>10} " + " ".join(f"{'trial ' + str(m):>11}" for m in MARKS) +
          f" {'1000/100':>9} {'100/10':>8} {'total s':>8}")
    for name, marks in results.items():
        cells = " ".join(f"{marks[m]:>11.4f}" if m in marks else f"{'-':>11}" for m in MARKS)
        late = f"{marks[1000] / marks[100]:.2f}×" if 1000 in marks else "-"
        early = f"{marks[100] / marks[10]:.2f}×" if 100 in marks else "-"
        print(f"{name:>10} {cells} {late:>9} {early:>8} {total[name]:>8.0f}")
    for name, marks in results.items():
        if 1000 in marks:
            ratio = marks[1000] / marks[100]
            print(f"  {name}: trial 1,000 costs {ratio:.2f}× trial 100 "
                  f"({'within' if ratio <= 2 else 'beyond'} the 2× goal)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--samplers", default="surrogate,tpe")
    ap.add_argument("--batch", type=int, default=8, help="the surrogate's batch_size")
    ap.add_argument("--landscape", type=Path,
                    default=ROOT / "benchmarks" / "data" / "lab_landscape.json")
    ap.add_argument("--allow-stale-lab", action="store_true",
                    help="run on a landscape measured on another lab than the current one")
    args = ap.parse_args(argv)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    from threadpoolctl import threadpool_limits

    results, total = {"CPU": {}, "wall": {}}, {"CPU": {}, "wall": {}}
    for algorithm in args.samplers.split(","):
        with threadpool_limits(limits=1):  # CPU time is then the sampler's own, not spinning
            cpu, wall = sampler_times(algorithm, args.trials, args.batch, args.landscape,
                                      args.allow_stale_lab)
        for what, times in (("CPU", cpu), ("wall", wall)):
            results[what][algorithm] = at_marks(times, args.batch)
            total[what][algorithm] = float(np.sum(times))
        print(f"{algorithm}: {len(cpu)} trials, sampler {total['CPU'][algorithm]:.0f} s of CPU, "
              f"{total['wall'][algorithm]:.0f} s of wall time", flush=True)
    # CPU first: on shared cores the wall time also measures the neighbours, who come and go
    # between trial 100 and trial 1,000; the CPU time is the sampler's own work
    report(results["CPU"], total["CPU"], "CPU")
    report(results["wall"], total["wall"], "wall")


if __name__ == "__main__":
    main()
