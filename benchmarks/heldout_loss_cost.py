"""What the per-domain held-out loss (`loss_<domain>`, on by default) costs a lab trial.

Runs the quickstart's lab sweep (sweeps/quickstart.yaml: its model, data, training and
evaluation) twice, side by side in one invocation, each in a fresh process with its own Ray: once
with `evaluate.heldout_loss` on (the default: 32 held-out samples per domain, measured after every
trained epoch) and once off. Both share one cache directory, so the lab base model and the
tokenized data are built once; the stage-prefix and evaluation caches are off, so that every
trial trains and evaluates in full in both modes. The same seed proposes the same trials.

Two figures, side by side:
- in-trial: the seconds the trial spent in the held-out passes (`heldout_seconds`, timed inside
  the worker) over the trial's wall time (its MLflow child run's span);
- on vs off: the median trial wall time with the loss over the median without it (noisier on a
  shared machine: it also holds Ray's and the evaluation's variance).

    python benchmarks/heldout_loss_cost.py [--trials 3]
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
GOAL = 0.05


def write_sweep(tmp: Path, mode: str, trials: int) -> Path:
    sweep = yaml.safe_load((ROOT / "sweeps" / "quickstart.yaml").read_text())
    work = tmp / mode
    work.mkdir()
    sweep.update(storage=str(work / "runs"), cache_dir=str(tmp / "cache"),
                 tracking={"uri": f"sqlite:///{work / 'mlflow.db'}"})
    sweep["search"].update(space=str(ROOT / "search_spaces" / "lab_mixture.yaml"),
                           num_samples=trials, seed=0)
    sweep["train"]["prefix_cache"] = False
    sweep["evaluate"].update(cache=False, heldout_loss={"enabled": mode == "on"})
    path = work / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def measure(sweep_path: str) -> list[dict]:
    import mlflow

    from sftmix_ray.config import load_sweep
    from sftmix_ray.search.tuner import run_sweep

    sweep, space = load_sweep(sweep_path)
    outcome = run_sweep(sweep, space)
    mlflow.set_tracking_uri(outcome.tracking_uri)
    runs = mlflow.search_runs(search_all_experiments=True,
                              filter_string=f"tags.mlflow.parentRunId = '{outcome.parent_run_id}'")
    return [{"trial": r["tags.mlflow.runName"],
             "wall": (r["end_time"] - r["start_time"]).total_seconds(),
             "train": r["metrics.train_seconds"], "eval": r["metrics.eval_seconds"],
             "heldout": r.get("metrics.heldout_seconds", 0.0) or 0.0}
            for _, r in runs.iterrows()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--child", metavar="SWEEP", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print("RESULT " + json.dumps(measure(args.child)))
        return
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("on", "off"):  # "on" first: it builds the shared lab base model
            sweep = write_sweep(Path(tmp), mode, args.trials)
            out = subprocess.run([sys.executable, __file__, "--child", str(sweep)],
                                 capture_output=True, text=True)
            if out.returncode:
                sys.exit(f"the {mode} sweep failed:\n{out.stderr[-4000:]}")
            line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
            results[mode] = json.loads(line.removeprefix("RESULT "))
    print(f"{'loss':<5}{'trial':<36}{'wall s':>8}{'train s':>9}{'eval s':>8}{'held-out s':>12}"
          f"{'share':>8}")
    for mode, trials in results.items():
        for t in trials:
            print(f"{mode:<5}{t['trial'][:35]:<36}{t['wall']:>8.1f}{t['train']:>9.1f}"
                  f"{t['eval']:>8.1f}{t['heldout']:>12.2f}{t['heldout'] / t['wall']:>8.1%}")
    on, off = results["on"], results["off"]
    share = statistics.median(t["heldout"] / t["wall"] for t in on)
    ratio = statistics.median(t["wall"] for t in on) / statistics.median(t["wall"] for t in off)
    print(f"held-out loss, in-trial: median {share:.1%} of a lab trial's wall time "
          f"(goal < {GOAL:.0%}); on vs off: median trial wall time ratio {ratio:.3f} "
          f"({statistics.median(t['wall'] for t in on):.1f} s vs "
          f"{statistics.median(t['wall'] for t in off):.1f} s)")


if __name__ == "__main__":
    main()
