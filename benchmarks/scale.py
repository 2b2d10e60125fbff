"""How the driver's cost grows with a sweep's size: sweeps of up to a thousand trials through the
real path (`run_sweep`: Ray Tune + OptunaSearch + the MLflow callback + the Pareto analysis),
with a cheap trainable standing in for training (the lab landscape of `landscape.py`, evaluated
in the trial), for each sampler.

    python benchmarks/scale.py [--trials tpe=1000,surrogate=1000,nsga2=500,gp=150]
        [--out docs/scale_run.json] [--plot docs/scale_run.png]
    python benchmarks/scale.py --results DIR/result.json ...   # summarize and plot saved runs
    python benchmarks/scale.py --sampler-only [--trials 1000] [--samplers surrogate,tpe]
        # the sampler alone, no Ray: its time at trial 10/100/1,000 (benchmarks/sampler_cost.py)

Each sampler runs in its own process (one Ray session each). Per trial it records: the
orchestration time, the gap between one trial's end and the next one's start (trials run one at
a time, so the gap is the driver's work: the result into MLflow and Optuna, the sampler, the next
trial's start); the sampler's own time in that gap (a timing wrapper around the sweep's sampler);
and the driver's resident memory. After the largest sweep it times `sftmix pareto` and
`sftmix report` on its runs, as a user runs them, and the MLflow query of a sweep's child runs
that the trial callback made at every trial start before it read them once per driver.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import yaml
from optuna.samplers import BaseSampler

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

TIMES: dict[int, float] = {}   # trial number -> sampler seconds (module-level: never pickled)
RSS: dict[int, int] = {}       # trial number -> driver RSS bytes when the trial was sampled


def landscape_trial(config, *, sweep, space, prepared, eval_sets, storage):
    """The trainable: the lab landscape's scores for the trial's point, no training."""
    from ray import tune

    from sftmix_ray.config.point import TrialPoint

    t0 = time.time()
    land = _landscape()
    point = TrialPoint.of_trial(config).to_wire()
    scores = dict(zip(land.land.objectives, land(point)))
    tune.report({**scores, "t_start": t0, "t_end": time.time(),
                 "train_seconds": time.time() - t0})


_LAND = None


def _landscape():
    global _LAND
    if _LAND is None:
        from landscape import Landscape, Surrogate

        # Only its cost matters here, not its figures: a landscape of an older lab times the same
        _LAND = Surrogate(Landscape.load(ROOT / "benchmarks" / "data" / "lab_landscape.json",
                                         allow_stale_lab=True))
    return _LAND


class Timed(BaseSampler):
    """The sweep's sampler, every call it gets timed per trial (at module level: Tune pickles
    its searcher with the experiment state)."""

    def __init__(self, inner):
        self.inner = inner

    def _t(self, number, fn, *args):
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            TIMES[number] = TIMES.get(number, 0.0) + time.perf_counter() - t0

    def infer_relative_search_space(self, study, trial):
        return self._t(trial.number, self.inner.infer_relative_search_space, study, trial)

    def sample_relative(self, study, trial, space):
        return self._t(trial.number, self.inner.sample_relative, study, trial, space)

    def sample_independent(self, study, trial, name, dist):
        return self._t(trial.number, self.inner.sample_independent, study, trial, name, dist)

    def before_trial(self, study, trial):
        RSS[trial.number] = psutil.Process().memory_info().rss
        return self._t(trial.number, self.inner.before_trial, study, trial)

    def after_trial(self, study, trial, state, values):
        return self._t(trial.number, self.inner.after_trial, study, trial, state, values)


class TimedMake:
    """`make_sampler`, its sampler wrapped in `Timed`."""

    def __init__(self, make):
        self.make = make

    def __call__(self, *args, **kwargs):
        return Timed(self.make(*args, **kwargs))


def write_sweep(tmp: Path, algorithm: str, trials: int, cache: Path) -> Path:
    from landscape import Landscape
    from search_efficiency import bench_space

    land = Landscape.load(ROOT / "benchmarks" / "data" / "lab_landscape.json",
                          allow_stale_lab=True)
    (tmp / "space.yaml").write_text(yaml.safe_dump(bench_space(land).model_dump(
        mode="json", exclude_none=True)))
    sweep = yaml.safe_load((ROOT / "sweeps" / "quickstart.yaml").read_text())
    sweep.update(name=f"scale_{algorithm}", storage=str(tmp / "runs"), cache_dir=str(cache),
                 tracking={"uri": f"sqlite:///{tmp / 'mlflow.db'}"})
    sweep["search"].update(space=str(tmp / "space.yaml"), num_samples=trials, algorithm=algorithm,
                           max_concurrent=1)
    if algorithm == "surrogate":
        sweep["search"]["batch_size"] = 8
    sweep["evaluate"] = {"math": {"n": 4}, "code": {"n": 4}, "general": {"n": 4}}
    path = tmp / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def one(algorithm: str, trials: int, tmp: Path, cache: Path, cli: bool) -> dict:
    """One sampler's sweep, in this process."""
    from sftmix_ray.config import load_sweep
    from sftmix_ray.search import searcher
    from sftmix_ray.search.tuner import run_sweep
    from sftmix_ray.tracking.runs import load_runs

    searcher.make_sampler = TimedMake(searcher.make_sampler)
    sweep, space = load_sweep(write_sweep(tmp, algorithm, trials, cache))
    t0 = time.perf_counter()
    outcome = run_sweep(sweep, space, trial_fn=landscape_trial)
    wall = time.perf_counter() - t0
    _, runs = load_runs(outcome.tracking_uri, sweep=outcome.parent_run_id)
    spans = sorted((r.metrics["t_start"], r.metrics["t_end"]) for r in runs
                   if "t_start" in r.metrics)
    gaps = [b[0] - a[1] for a, b in zip(spans, spans[1:])]  # gaps[i]: before trial i+2
    numbers = sorted(TIMES)
    out = {"algorithm": algorithm, "trials": len(spans), "wall_s": wall,
           "gap_s": gaps, "sampler_s": [TIMES[n] for n in numbers][1:len(gaps) + 1],
           "rss_mb": [RSS.get(n, 0) / 2**20 for n in numbers][1:len(gaps) + 1]}
    if cli:
        out.update(cli_timings(outcome, tmp))
    return out


def cli_timings(outcome, tmp: Path) -> dict:
    from sftmix_ray.tracking.store import child_runs, client_for

    sftmix = [sys.executable, "-m", "sftmix_ray.cli"]
    common = ["--sweep", outcome.parent_run_id, "--tracking-uri", outcome.tracking_uri]
    timings = {}
    for name, extra in (("pareto", []), ("report", ["--out", str(tmp / "report")])):
        t0 = time.perf_counter()
        subprocess.run([*sftmix, name, *common, *extra], check=True, capture_output=True)
        timings[f"cli_{name}_s"] = time.perf_counter() - t0
    client = client_for(outcome.tracking_uri)
    t0 = time.perf_counter()
    n = len(child_runs(client, outcome.experiment_id, outcome.parent_run_id))
    timings["child_runs_query_s"], timings["child_runs"] = time.perf_counter() - t0, n
    return timings


def summarize(r: dict) -> dict:
    """Trials 10-109 against the last 100. On shared cores, other work adds time in bursts and
    never removes it, so the lower quartile and the 10th percentile (the floor) are reported
    beside the median: growth the driver causes moves the floor; a busy neighbour does not."""
    gaps, sampler = r["gap_s"], r["sampler_s"]
    rest = np.array(gaps) - np.array(sampler)
    early, late = slice(8, 108), slice(max(8, len(gaps) - 100), len(gaps))
    out = {"worst_gap": max(gaps), "rss_first_mb": r["rss_mb"][0],
           "rss_last_mb": r["rss_mb"][-1]}
    for name, sl in (("early", early), ("late", late)):
        out[f"{name}_orchestration"] = float(np.median(rest[sl]))
        out[f"{name}_orchestration_p25"] = float(np.percentile(rest[sl], 25))
        out[f"{name}_orchestration_p10"] = float(np.percentile(rest[sl], 10))
        out[f"{name}_sampler"] = float(np.median(sampler[sl]))
        # the surrogate refits once a batch: its mean, not its median, is its cost per trial
        out[f"{name}_sampler_mean"] = float(np.mean(sampler[sl]))
    return out


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for r in results:
        idx = np.arange(2, len(r["gap_s"]) + 2)
        rest = np.array(r["gap_s"]) - np.array(r["sampler_s"])
        w = 15
        smooth = np.array([np.median(rest[max(0, i - w):i + w + 1]) for i in range(len(rest))])
        axes[0].plot(idx, smooth, label=r["algorithm"])
        axes[1].plot(idx, r["sampler_s"], lw=0.6, label=r["algorithm"])
        axes[2].plot(idx, r["rss_mb"], label=r["algorithm"])
    axes[0].set(title="orchestration per trial, sampler excluded\n(running median of 31)",
                xlabel="trial", ylabel="seconds", ylim=(0, None))
    axes[1].set(title="sampler time per trial", xlabel="trial", ylabel="seconds", yscale="log")
    axes[2].set(title="driver memory (RSS)", xlabel="trial", ylabel="MiB")
    for ax in axes:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    if "--sampler-only" in sys.argv:  # minutes instead of the whole driver's hours
        from sampler_cost import main as sampler_only

        sampler_only([a for a in sys.argv[1:] if a != "--sampler-only"])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", default="tpe=1000,surrogate=1000,nsga2=500,gp=150")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "scale_run.json")
    ap.add_argument("--plot", type=Path, default=ROOT / "docs" / "scale_run.png")
    ap.add_argument("--one", nargs=4, metavar=("ALGORITHM", "TRIALS", "DIR", "CLI"),
                    help=argparse.SUPPRESS)
    ap.add_argument("--results", nargs="+", type=Path, help="summarize and plot saved "
                    "per-sampler results (a --one run's result.json) instead of running")
    args = ap.parse_args()
    if args.results:
        results = []
        for p in args.results:  # a --one result.json, or an earlier --out file (a list)
            data = json.loads(p.read_text())
            results += data if isinstance(data, list) else [data]
        for r in results:
            r["summary"] = summarize(r)
        finish(results, args)
        return
    if args.one:
        alg, n, tmp, cli = args.one
        result = one(alg, int(n), Path(tmp), Path(tmp).parent / "cache", cli == "1")
        (Path(tmp) / "result.json").write_text(json.dumps(result))
        return
    plan = [(a, int(n)) for a, n in (x.split("=") for x in args.trials.split(","))]
    largest = max(n for _, n in plan)
    results = []
    with tempfile.TemporaryDirectory(dir=ROOT / ".scratch" if (ROOT / ".scratch").is_dir()
                                     else None) as base:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "benchmarks")]),
               "MLFLOW_LOGGING_LEVEL": "WARNING"}
        for alg, n in plan:
            tmp = Path(base) / alg
            tmp.mkdir()
            cli = "1" if n == largest and not any(r["trials"] == largest for r in results) \
                else "0"
            t0 = time.perf_counter()
            with open(tmp / "sweep.log", "w") as log:  # a thousand progress lines each
                subprocess.run([sys.executable, __file__, "--one", alg, str(n), str(tmp), cli],
                               check=True, env=env, stdout=log, stderr=subprocess.STDOUT)
            result = json.loads((tmp / "result.json").read_text())
            result["summary"] = summarize(result)
            results.append(result)
            print(f"{alg}: {result['trials']} trials in {time.perf_counter() - t0:.0f} s; "
                  f"{json.dumps({k: round(v, 4) for k, v in result['summary'].items()})}",
                  flush=True)
    finish(results, args)


def finish(results: list[dict], args) -> None:
    report(results)
    args.out.write_text(json.dumps(results))
    plot(results, args.plot)
    print(f"raw numbers: {args.out}; plot: {args.plot}")


def report(results: list[dict]) -> None:
    from sampler_cost import at_marks

    print("\nseconds per trial, trials 10-109 → the last 100 (late/early):")
    for r in results:
        s = r["summary"]
        ratio = {k: s[f"late_{k}"] / s[f"early_{k}"] for k in
                 ("orchestration", "orchestration_p25", "orchestration_p10")}
        print(f"  {r['algorithm']:>9} ({r['trials']} trials): orchestration median "
              f"{s['early_orchestration']:.3f} → {s['late_orchestration']:.3f} "
              f"({ratio['orchestration']:.2f}×), lower quartile {s['early_orchestration_p25']:.3f}"
              f" → {s['late_orchestration_p25']:.3f} ({ratio['orchestration_p25']:.2f}×), 10th "
              f"percentile {ratio['orchestration_p10']:.2f}×; sampler median "
              f"{s['early_sampler']:.3f} → {s['late_sampler']:.3f} (mean "
              f"{s['early_sampler_mean']:.3f} → {s['late_sampler_mean']:.3f}); driver RSS "
              f"{s['rss_first_mb']:.0f} → {s['rss_last_mb']:.0f} MiB")
    print("\nsampler seconds per trial at trial 10 / 100 / 1,000 (mean of trials 0.8·N to 1.2·N):")
    for r in results:
        marks = at_marks(r["sampler_s"], 8)
        if 100 in marks:
            late = f", 1000/100 {marks[1000] / marks[100]:.2f}×" if 1000 in marks else ""
            print(f"  {r['algorithm']:>9}: " + " / ".join(f"{v:.4f}" for v in marks.values())
                  + f" (100/10 {marks[100] / marks[10]:.2f}×{late})")
    for r in results:
        if "cli_pareto_s" in r:
            print(f"\non {r['trials']} runs: `sftmix pareto` {r['cli_pareto_s']:.1f} s, "
                  f"`sftmix report` {r['cli_report_s']:.1f} s (each a fresh process); one "
                  f"query of the sweep's {r['child_runs']} child runs {r['child_runs_query_s']:.2f}"
                  f" s (paid at every trial start before the callback read them once)")


if __name__ == "__main__":
    main()
