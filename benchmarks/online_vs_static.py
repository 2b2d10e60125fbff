"""Online mixtures against a searched static mixture, on the lab, at matched budgets.

    python benchmarks/online_vs_static.py [--static 6] [--seeds 2] [--amount 1000]
        [--methods exp3,doremi] [--step-size S] [--smoothing 0.1] [--warmup 0.1]
        [--update-every 4] [--storage runs/bench_online] [--keep]

Three sweeps of the quickstart's settings (sweeps/quickstart.yaml: its lab, model, training and
evaluation), every trial at the same budget: `--amount` distinct samples and amount × epochs
sample visits (static: the amount's samples, each seen once an epoch; online: amount × epochs
draws by moving weights, at most `amount` distinct samples, each domain's a prefix of its nested
order; train/online_loop.py):
1. a static search: TPE over the ratio (simplex) and strategy (multi-task, DMT with the study's
   k), `--static` trials;
2. the online methods from the uniform prior, each repeated over `--seeds` seeds;
3. the fair controls: for each online trial, the static multi-task mixture equal to its
   step-averaged weights, same seed.

It prints: the hypervolume (every ability maximized, reference 0) of the static front alone and
of static + online; each online method's point (mean over seeds, interval of the mean) and
whether it is on the joint front, and if so whether beyond noise (it dominates some point of the
static front on the 95% bounds, pareto.dominates_beyond_noise, the report's test); and each
online trial against its control, ability by ability, told apart or not by their intervals.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sftmix_ray.config import load_sweep  # noqa: E402
from sftmix_ray.pareto import dominates_beyond_noise, hypervolume_of  # noqa: E402
from sftmix_ray.report.table import build_rows  # noqa: E402
from sftmix_ray.search.tuner import run_sweep  # noqa: E402
from sftmix_ray.tracking.runs import load_runs  # noqa: E402

OBJECTIVES = {"math": "max", "code": "max", "general": "max"}
DOMAINS = ["math", "code", "general"]
DMT_K = [1, 0.25, 0.0625, 0.015625, 0.00390625]


def sweep_of(name: str, space: dict, search: dict, args, work: Path):
    """The quickstart's sweep with this space and search, under `work`."""
    (work / f"{name}.space.yaml").write_text(yaml.safe_dump(space))
    return load_sweep(ROOT / "sweeps" / "quickstart.yaml", {
        "name": name, "storage": str(args.storage),
        "tracking": {"uri": f"sqlite:///{work / 'mlflow.db'}"},
        "search": {"space": str(work / f"{name}.space.yaml"), "max_concurrent": 1,
                   "objectives": OBJECTIVES, **search}})


def run(name: str, space: dict, search: dict, args, work: Path) -> list:
    sweep, sp = sweep_of(name, space, search, args, work)
    t0 = time.time()
    outcome = run_sweep(sweep, sp)
    runs = load_runs(outcome.tracking_uri, sweep=outcome.parent_run_id)[1]
    done = [r for r in runs if r.status == "FINISHED"]
    print(f"  {name}: {len(done)}/{len(runs)} trials finished in {time.time() - t0:.0f} s",
          flush=True)
    return done


def base_space(strategies: dict, ratio: dict, amount: int) -> dict:
    return {"domains": DOMAINS, "specialized": ["math", "code"], "ratio": ratio,
            "amount": {"choices": [amount]}, "strategies": strategies}


def scores(run) -> dict[str, tuple[float, float, float]]:
    return {o: (float(run.metrics[o]), float(run.metrics.get(f"{o}_ci_low", run.metrics[o])),
                float(run.metrics.get(f"{o}_ci_high", run.metrics[o]))) for o in OBJECTIVES}


def hv(rows) -> float:
    values = np.array([[r.scores[o] for o in OBJECTIVES] for r in rows]).reshape(-1, 3)
    return hypervolume_of(values, [True] * 3, [0.0] * 3) if len(values) else 0.0


def ends(row) -> tuple[list[float], list[float]]:
    """(worst, best) per ability: the 95% bounds (the score where a row has no interval)."""
    lo = [row.intervals.get(o, (row.scores[o],) * 2)[0] for o in OBJECTIVES]
    hi = [row.intervals.get(o, (row.scores[o],) * 2)[1] for o in OBJECTIVES]
    return lo, hi


def label(row) -> str:
    if row.strategy == "online":
        return f"online {row.params.get('online.method')} (×{row.n} seeds)"
    k = f" k={row.k:g}" if row.k is not None else ""
    shares = "/".join(f"{row.shares[d]:.2f}" for d in DOMAINS)
    return f"{row.strategy}{k} {shares}"


def cell(est: tuple[float, float, float]) -> str:
    return f"{est[0]:.3f} [{est[1]:.3f}, {est[2]:.3f}]"


def front_table(static_runs: list, online_runs: list) -> None:
    static_rows = build_rows(static_runs, OBJECTIVES)
    joint = build_rows(static_runs + online_runs, OBJECTIVES)
    static_front = [r for r in static_rows if r.front]
    hv_static, hv_joint = hv(static_rows), hv(joint)
    print(f"\nhypervolume (math × code × general, reference 0): static front alone "
          f"{hv_static:.4f}; static + online {hv_joint:.4f} "
          f"({hv_joint / hv_static:.3f}× the static front's)" if hv_static else
          "\nhypervolume: no static trial finished")
    print(f"\n{'point':<44} {'math':>24} {'code':>24} {'general':>24}  joint front")
    for r in sorted(joint, key=lambda r: (r.strategy != "online", not r.front, r.name)):
        verdict = "★" if r.front else ("≈ (within noise)" if r.within_noise else "")
        if r.strategy == "online" and r.front:
            beaten = [s for s in static_front if dominates_beyond_noise(
                *ends(r), *ends(s), [True] * 3)]
            verdict += (f" beyond noise: dominates {len(beaten)} static front point(s) on "
                        f"the 95% bounds" if beaten else " but within noise of the static "
                        "front (dominates none of it on the 95% bounds)")
        row = [cell((r.scores[o], *r.intervals.get(o, (r.scores[o],) * 2)[:2]))
               for o in OBJECTIVES]
        print(f"{label(r):<44} {row[0]:>24} {row[1]:>24} {row[2]:>24}  {verdict}")


def controls_table(online_runs: list, control_runs: list) -> None:
    print("\neach online trial against its fair control (static multi-task at the online "
          "trial's mean weights, same seed):")
    print(f"{'method':<7} {'seed':>4}  {'mean weights m/c/g':<18} {'ability':<8} "
          f"{'online':>24} {'control':>24}  difference")
    diffs: dict[str, list] = {}
    for r in sorted(online_runs, key=lambda r: (r.params["online.method"], r.params["seed"])):
        mean = [float(r.params[f"weights_mean.{d}"]) for d in DOMAINS]
        c = _control_of(r, mean, control_runs)
        method = r.params["online.method"]
        for o in OBJECTIVES:
            a = scores(r)[o]
            b = scores(c)[o] if c else None
            if b is None:
                told = "control missing"
            else:
                diffs.setdefault(method, []).append((o, a[0] - b[0]))
                apart = a[1] > b[2] or b[1] > a[2]
                told = f"{a[0] - b[0]:+.3f} " + ("told apart" if apart else "within noise")
            print(f"{method:<7} {r.params['seed']:>4}  {'/'.join(f'{m:.2f}' for m in mean):<18} "
                  f"{o:<8} {cell(a):>24} {cell(b) if b else '-':>24}  {told}")
    for method, ds in diffs.items():
        mean = {o: np.mean([d for oo, d in ds if oo == o]) for o in OBJECTIVES}
        print(f"  {method}: mean online − control over seeds: " +
              " ".join(f"{o} {v:+.3f}" for o, v in mean.items()))


def _control_of(run, mean: list[float], control_runs: list):
    """The control trained at these weights (to the grid's rounding) with the run's seed."""
    near = [(max(abs(float(c.params.get(f"ratio.{d}", 0)) - m) for d, m in zip(DOMAINS, mean)),
             c) for c in control_runs if c.params.get("seed") == run.params.get("seed")]
    best = min(near, key=lambda x: x[0], default=(1.0, None))
    return best[1] if best[0] < 0.01 else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--static", type=int, default=6, help="static TPE trials")
    ap.add_argument("--seeds", type=int, default=2, help="seed repeats per online method")
    ap.add_argument("--amount", type=int, default=1000, help="samples per trial (× epochs)")
    ap.add_argument("--methods", default="exp3,doremi")
    ap.add_argument("--step-size", type=float, default=None,
                    help="default: each method's (exp3 0.1, doremi 1)")
    ap.add_argument("--smoothing", type=float, default=0.1)
    ap.add_argument("--warmup", type=float, default=0.1)
    ap.add_argument("--update-every", type=int, default=4)
    ap.add_argument("--storage", type=Path, default=ROOT / "runs" / "bench_online",
                    help="sweep storage (its cache: tokenized data, the lab base)")
    ap.add_argument("--keep", action="store_true", help="keep the benchmark's MLflow store")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="online-vs-static-"))
    t0 = time.time()
    print(f"online vs static on the lab (sweeps/quickstart.yaml's settings); every trial "
          f"{args.amount} samples × the sweep's epochs of draws; work dir {work}", flush=True)
    static = run("bench_static", base_space({"multi_task": {}, "dmt": {"k": DMT_K}},
                                            {"kind": "simplex"}, args.amount),
                 {"algorithm": "tpe", "num_samples": args.static, "seed": 0}, args, work)
    knobs = {"smoothing": {"choices": [args.smoothing]}, "warmup": {"choices": [args.warmup]},
             "update_every": {"choices": [args.update_every]},
             **({"step_size": {"choices": [args.step_size]}} if args.step_size else {})}
    online = run("bench_online", base_space(
        {"online": {"methods": args.methods.split(","), **knobs}},
        {"kind": "fixed", "fixed": {d: 1 for d in DOMAINS}}, args.amount),
        {"algorithm": "grid", "num_samples": 1, "seeds": list(range(args.seeds))}, args, work)
    controls = []
    for seed in range(args.seeds):
        mine = [r for r in online if int(r.params["seed"]) == seed]
        grid = [{d: round(float(r.params[f"weights_mean.{d}"]), 3) for d in DOMAINS}
                for r in mine]
        if grid:
            controls += run(f"bench_control_s{seed}", base_space(
                {"multi_task": {}}, {"kind": "simplex", "grid": grid}, args.amount),
                {"algorithm": "grid", "num_samples": 1, "seeds": [seed]}, args, work)
    front_table(static, online)
    controls_table(online, controls)
    print(f"\n{len(static) + len(online) + len(controls)} trials in {time.time() - t0:.0f} s")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
