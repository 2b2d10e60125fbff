"""The study's five findings, reproduced in the lab: run the four lab RQ sweeps through `sftmix
run`'s own path (Ray Tune + Train, MLflow), then decide each finding from the tracked rows with
`report/study.py` (the computations `sftmix report` uses) and print the table, study vs lab.

    python benchmarks/paper_findings.py [--pool 2000] [--only rq1,rq2,rq3,rq4]
        [--storage runs/paper_findings] [--out docs/paper_findings.md]

Smaller than the sweep files, to fit ≤ 60 min on 2 cores (stated in the table's header): every
domain pool is `--pool` samples (the files say 6400 for RQ1–RQ3 and 2000 for RQ4), and RQ2 runs
only its mixed arms, since its single-domain arms are RQ1's trials (same data, seed and model).
A sweep that already finished under `--storage` is read back, not run again.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sftmix_ray.config import load_sweep  # noqa: E402
from sftmix_ray.report import study  # noqa: E402
from sftmix_ray.report.table import build_rows  # noqa: E402
from sftmix_ray.search.tuner import run_sweep  # noqa: E402
from sftmix_ray.tracking.runs import load_runs  # noqa: E402

SWEEPS = {"rq1": "rq1_scaling_lab", "rq2": "rq2_mixing_lab", "rq3": "rq3_ratio_vs_amount_lab",
          "rq4": "rq4_strategies_lab"}
OBJECTIVES = {"math": "max", "code": "max", "general": "max"}


def _mixed_arms_only(space_path: Path, out: Path) -> Path:
    space = yaml.safe_load(space_path.read_text())
    space["fractions"]["grid"] = [g for g in space["fractions"]["grid"] if len(g) > 1]
    out.write_text(yaml.safe_dump(space))
    return out


def run_rq(rq: str, args, scratch: Path) -> tuple[list, float]:
    """The rows of one RQ sweep (run now, or read back if it finished before) and its seconds."""
    storage = Path(args.storage).resolve()
    uri = f"sqlite:///{storage / 'mlflow.db'}"
    state = storage / f"{rq}.json"
    if state.is_file():
        done = json.loads(state.read_text())
        return build_rows(load_runs(uri, sweep=done["parent"])[1], OBJECTIVES), done["seconds"]
    path = ROOT / "sweeps" / f"{SWEEPS[rq]}.yaml"
    data = yaml.safe_load(path.read_text())
    # the quickstart's cache: the lab base model (same size and pretraining) is built only once
    overrides = {"storage": str(storage / "runs"), "tracking": {"uri": uri},
                 "cache_dir": str(ROOT / "runs" / "cache"),
                 "domains": {d: {**spec, "pool": args.pool} for d, spec in data["domains"].items()}}
    if rq == "rq2":
        space = ROOT / data["search"]["space"]
        overrides["search"] = {**data["search"],
                               "space": str(_mixed_arms_only(space, scratch / "rq2_space.yaml"))}
    sweep, space = load_sweep(path, overrides)
    t0 = time.time()
    outcome = run_sweep(sweep, space)
    seconds = time.time() - t0
    storage.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"parent": outcome.parent_run_id, "seconds": seconds}))
    return build_rows(load_runs(uri, sweep=outcome.parent_run_id)[1], OBJECTIVES), seconds


def table(verdicts: list[study.Verdict], header: str) -> str:
    lines = [header, "", "| finding | study | lab | verdict |", "|---|---|---|---|"]
    lines += [f"| {v.finding} | {v.study} | {v.lab} | **{v.verdict}** |" for v in verdicts]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pool", type=int, default=2000)
    ap.add_argument("--only", default="rq1,rq2,rq3,rq4")
    ap.add_argument("--storage", default="runs/paper_findings")
    ap.add_argument("--out", default="docs/paper_findings.md")
    args = ap.parse_args()
    rows, seconds = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        for rq in args.only.split(","):
            rows[rq], seconds[rq] = run_rq(rq, args, Path(scratch))
            print(f"{rq}: {len(rows[rq])} points in {seconds[rq]:.0f}s", flush=True)
    get = rows.get
    verdicts = [
        study.scaling(get("rq1", [])),
        study.mixing(get("rq1", []) + get("rq2", [])),  # RQ2's alone arms are RQ1's trials
        study.amount_vs_ratio(get("rq3", [])),
        study.forgetting(get("rq4", [])),
        study.dmt(get("rq4", [])),
    ]
    per_rq = ", ".join(f"{k} {v / 60:.1f}" for k, v in seconds.items())
    header = (f"Lab: pools of {args.pool} per domain, RQ2's mixed arms beside RQ1's single-domain "
              f"trials; {sum(len(r) for r in rows.values())} points in "
              f"{sum(seconds.values()) / 60:.0f} min ({per_rq}). Verdicts from the 95% intervals "
              f"and Spearman tests of `sftmix_ray/report/study.py`.")
    text = table(verdicts, header)
    print(text)
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# The study's findings in the lab\n\nRegenerate: `python "
                   f"benchmarks/paper_findings.py --pool {args.pool}`\n\n" + text)
    (out.with_suffix(".json")).write_text(json.dumps(
        {"pool": args.pool, "seconds": seconds,
         "verdicts": [v.__dict__ for v in verdicts]}, indent=1))


if __name__ == "__main__":
    main()
