"""Per-trial orchestration overhead: trial wall time minus training and evaluation time.

Runs the same small lab sweep twice, side by side in one invocation, each in a fresh process with
its own Ray: once started by a plain `ray.init()` (Ray Train's 2 s health-check poll, preemption
watcher, metrics and structured logging on), once with sftmix's runtime settings
(`sftmix_ray.search.runtime.ensure_ray`). Both use what the project always uses: reused Tune trial
actors and the TorchTrainer without its datasets and placement-group-cleaner callbacks
(`sftmix_ray/train/launch.py`), so the ratio isolates the runtime settings; the walking-skeleton
note records the probes that measured those two (a stock nested TorchTrainer: ~21 s per trial).
Trial wall time is the MLflow child run's span, opened
by the driver when Tune starts the trial and closed when it completes, so it includes everything a
user waits for: Tune scheduling, TorchTrainer start, worker start-up, data and model loading,
training, evaluation, reporting and teardown.

    python benchmarks/trial_overhead.py [--trials 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def write_sweep(tmp: Path, trials: int) -> Path:
    space = {"domains": ["math", "code", "general"], "specialized": ["math", "code"],
             "amount": {"low": 200, "high": 400},
             "strategies": {"multi_task": {}, "dmt": {"k": [0.25]}}}
    (tmp / "space.yaml").write_text(yaml.safe_dump(space))
    sweep = yaml.safe_load((ROOT / "sweeps" / "quickstart.yaml").read_text())
    sweep.update(storage=str(tmp / "runs"), tracking={"uri": f"sqlite:///{tmp / 'mlflow.db'}"})
    sweep["search"].update(space=str(tmp / "space.yaml"), num_samples=trials, max_concurrent=1)
    sweep["train"]["epochs"] = 1
    sweep["evaluate"] = {"math": {"n": 16}, "code": {"n": 8}, "general": {"n": 16}}
    path = tmp / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def measure(sweep_path: str, mode: str) -> dict:
    import mlflow
    import ray

    from sftmix_ray.config import load_sweep
    from sftmix_ray.search.tuner import run_sweep

    if mode == "plain-init":
        ray.init(include_dashboard=False, log_to_driver=False)
    sweep, space = load_sweep(sweep_path)
    outcome = run_sweep(sweep, space)
    mlflow.set_tracking_uri(outcome.tracking_uri)
    runs = mlflow.search_runs(search_all_experiments=True,
                              filter_string=f"tags.mlflow.parentRunId = '{outcome.parent_run_id}'")
    per_trial = []
    for _, r in runs.iterrows():
        wall = (r["end_time"] - r["start_time"]).total_seconds()
        work = r["metrics.train_seconds"] + r["metrics.eval_seconds"]
        per_trial.append({"wall": wall, "train": r["metrics.train_seconds"],
                          "eval": r["metrics.eval_seconds"], "overhead": wall - work})
    return {"mode": mode, "trials": per_trial}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--child", nargs=2, metavar=("SWEEP", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print("RESULT " + json.dumps(measure(*args.child)))
        return
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("plain-init", "sftmix"):
            work = Path(tmp) / mode
            work.mkdir()
            sweep = write_sweep(work, args.trials)
            out = subprocess.run([sys.executable, __file__, "--child", str(sweep), mode],
                                 capture_output=True, text=True, check=True)
            line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
            results[mode] = json.loads(line.removeprefix("RESULT "))["trials"]
    print(f"{'mode':<14}{'trials':>7}{'wall s':>9}{'train s':>9}{'eval s':>8}{'overhead s':>12}")
    med = {}
    for mode, trials in results.items():
        m = {k: statistics.median(t[k] for t in trials) for k in ("wall", "train", "eval",
                                                                   "overhead")}
        med[mode] = m
        print(f"{mode:<14}{len(trials):>7}{m['wall']:>9.1f}{m['train']:>9.1f}{m['eval']:>8.1f}"
              f"{m['overhead']:>12.1f}")
    ratio = med["sftmix"]["overhead"] / med["plain-init"]["overhead"]
    print(f"median per-trial overhead: {med['sftmix']['overhead']:.1f} s with sftmix settings vs "
          f"{med['plain-init']['overhead']:.1f} s with a plain ray.init (ratio {ratio:.2f}; "
          f"goal ≤ 10 s)")


if __name__ == "__main__":
    main()
