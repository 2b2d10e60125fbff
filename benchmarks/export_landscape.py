"""Export a finished lab grid sweep (by default `sweeps/landscape_lab.yaml`'s) from MLflow into the
JSON the search benchmark fits its surrogate to.

    sftmix run sweeps/landscape_lab.yaml
    python benchmarks/export_landscape.py [--experiment sftmix-landscape_lab] [--tracking-uri URI]
                                          [--out benchmarks/data/lab_landscape.json]

Takes the experiment's most recent sweep (parent run); its failed trials are left out and counted.
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
                       "strategy": r.params["strategy"],
                       "k": float(k) if k not in (None, "", "None") else None,
                       **{o: float(r.metrics[o]) for o in objectives},
                       "train_seconds": r.metrics.get("train_seconds")})
    amounts = [t["amount"] for t in trials]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "source": f"MLflow sweep {parent.run_id} (experiment {args.experiment!r})",
        "sweep": parent.params.get("model", ""), "domains": domains, "objectives": objectives,
        "amount_range": [min(amounts), max(amounts)], "trials": trials}, indent=1))
    print(f"{len(trials)} trials ({failed} failed or incomplete, left out) → {args.out}")


if __name__ == "__main__":
    main()
