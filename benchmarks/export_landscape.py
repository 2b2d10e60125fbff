"""Export a finished lab grid sweep (by default `sweeps/landscape_lab.yaml`'s) from MLflow into the
JSON the search benchmark fits its surrogate to.

    sftmix run sweeps/landscape_lab.yaml
    python benchmarks/export_landscape.py [--experiment sftmix-landscape_lab] [--tracking-uri URI]
        [--sweep sweeps/landscape_lab.yaml] [--out benchmarks/data/lab_landscape.json]

Takes the experiment's most recent sweep (parent run); its failed trials are left out and counted,
and the file says how many of the sweep's planned trials it holds (`planned`): a sweep of hours
may be exported while it runs, or stopped and resumed later (`sftmix resume`).
Each trial keeps its training seed (a grid repeated over seeds: `search.seeds`), and the file
names the lab it was measured on (`lab`: `train/lab_base.lab_version` of `--sweep`, with the
sweep's data key), so `landscape.py` can tell it from a later lab's. The sweep's own base model
(its MLflow tag) must be the current lab's: a sweep measured before the lab changed is refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sftmix_ray.tracking.runs import load_runs  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--experiment", default="sftmix-landscape_lab")
    ap.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    ap.add_argument("--sweep", type=Path, default=ROOT / "sweeps" / "landscape_lab.yaml",
                    help="the sweep file it ran (its lab version is written)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "data" / "lab_landscape.json")
    args = ap.parse_args()

    from mlflow.tracking import MlflowClient

    client = MlflowClient(args.tracking_uri)
    exp = client.get_experiment_by_name(args.experiment)
    if exp is None:
        sys.exit(f"--experiment: no experiment {args.experiment!r} at {args.tracking_uri}")
    parents = client.search_runs([exp.experiment_id], filter_string="tags.`sftmix.kind` = 'sweep'",
                                 order_by=["attributes.start_time DESC"], max_results=1)
    if not parents:
        sys.exit(f"no sweep run in experiment {args.experiment!r}")
    parent, runs = load_runs(args.tracking_uri, sweep=parents[0].info.run_id)
    lab = measured_lab(args.sweep, parents[0].data.tags)
    planned = planned_of(args.sweep)
    objectives = [o.split(":")[0] for o in parent.params["objectives"].split(",")]
    domains = parent.params["domains"].split(",")
    trials, failed = [], 0
    for r in runs:
        if r.status != "FINISHED" or any(o not in r.metrics for o in objectives):
            failed += 1
            continue
        ratio = {d: float(r.params.get(f"ratio.{d}", 0.0)) for d in domains}
        k = r.params.get("k")
        trials.append({"ratio": ratio, "amount": int(r.params["amount"]),
                       "strategy": r.params["strategy"], "seed": _seed(r.params),
                       "k": float(k) if k not in (None, "", "None") else None,
                       **{o: float(r.metrics[o]) for o in objectives},
                       "train_seconds": r.metrics.get("train_seconds")})
    amounts = [t["amount"] for t in trials]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "source": f"MLflow sweep {parent.run_id} (experiment {args.experiment!r})",
        "sweep": parent.params.get("model", ""), "lab": lab, "domains": domains,
        "objectives": objectives, "planned": planned,
        "amount_range": [min(amounts), max(amounts)], "trials": trials}, indent=1))
    print(f"{len(trials)} of the sweep's {planned} trials ({failed} failed or incomplete, left "
          f"out; the rest not run yet: `sftmix resume` completes the sweep), lab "
          f"{lab['version']} → {args.out}")


def planned_of(sweep_path: Path) -> int:
    """How many trials the grid sweep runs in all (points × seeds): an export taken while it
    is still running (or stopped, to be resumed) says how much of it it holds."""
    from sftmix_ray.config import load_sweep
    from sftmix_ray.search.tuner import planned_trials

    return planned_trials(*load_sweep(sweep_path))


def measured_lab(sweep_path: Path, tags: dict) -> dict:
    """The lab the sweep ran on: the current lab's version, once the sweep's own base model (its
    `sftmix.base_model` tag) is found to be the current lab's."""
    from sftmix_ray.config import load_sweep
    from sftmix_ray.train.lab_base import lab_version

    lab = lab_version(load_sweep(sweep_path)[0])
    ran = tags.get("sftmix.base_model")
    if ran is not None and ran != "none" and ran != lab["base_key"]:
        sys.exit(f"the sweep ran on lab base model {ran}, the current lab's is "
                 f"{lab['base_key']}: its scores are an older lab's; run it again "
                 f"(sftmix run {sweep_path}) before exporting")
    return {**lab, "data_key": tags.get("sftmix.data_key")}


def _seed(params: dict) -> int | None:
    seed = params.get("seed")
    return int(seed) if seed not in (None, "", "None") else None


if __name__ == "__main__":
    main()
