"""Building a trial's mixture from the tokenized cache vs re-tokenizing raw data, side by side.

    python benchmarks/mixture_cache.py [--trials 1 10 50]

Domains: real GSM8K train (7,473 rows, tests/fixtures/gsm8k) plus lab code and general (4,000 each),
the
lab tokenizer, max length 512. A trial's data work is what `trial.build_plan` (mixture, stages,
manifest) and the train worker's stage assembly do. The baseline does what a trial without the
cache must: read the raw rows, select the same mixture, tokenize the selected conversations. The
tokenizer is loaded once, outside both timings, which favours the baseline.

Prints the per-trial ratio (goal ≥ 20×) and the cached cost per trial as the number of trials
grows (goal: flat, since no trial repeats work another did).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab_setup import bench_sweep  # noqa: E402

from sftmix_ray.config.point import TrialPoint  # noqa: E402
from sftmix_ray.config.space import SearchSpace  # noqa: E402
from sftmix_ray.data.mixture import resolve_counts, select_indices  # noqa: E402
from sftmix_ray.data.prepare import DomainSource, prepare  # noqa: E402
from sftmix_ray.data.template import template_for  # noqa: E402
from sftmix_ray.data.tokenize import tokenize_conversations  # noqa: E402
from sftmix_ray.data.tokenizer import load_tokenizer  # noqa: E402
from sftmix_ray.plan.manifest import build_plan  # noqa: E402
from sftmix_ray.plan.strategies import plan_stages  # noqa: E402
from sftmix_ray.train.worker import _stage_data  # noqa: E402

DOMAINS = ["math", "code", "general"]


def sweep_config(storage: Path):
    return bench_sweep(storage, real_math=True, max_length=512)


SPACE = SearchSpace.model_validate({"domains": DOMAINS, "specialized": ["math", "code"],
                                    "amount": {"low": 500, "high": 4000},
                                    "strategies": {"multi_task": {}, "dmt": {"k": [0.25]}}})


def trial_points(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    points = []
    for _ in range(n):
        w = [rng.random() for _ in DOMAINS]
        points.append({"ratio": {d: x / sum(w) for d, x in zip(DOMAINS, w)},
                       "amount": rng.randint(500, 4000),
                       "strategy": rng.choice(["multi_task", "dmt"]), "k": 0.25})
    return points


def cached_trial(point: dict, prepared, seed: int = 0) -> int:
    stages, _manifest = build_plan(TrialPoint.from_wire(point), SPACE, prepared, seed, 512)
    data = _stage_data(prepared, stages, epochs=1, seed=seed)
    return sum(len(s.samples) for s in data)


def retokenize_trial(point: dict, sweep, tokenizer, template, sizes: dict,
                     seed: int = 0) -> int:
    convs = {name: DomainSource(name, dom).conversations()[0]
             for name, dom in sweep.domains.items()}
    counts = resolve_counts(point, DOMAINS, sizes, {})
    stages = plan_stages(point["strategy"], counts, SPACE.specialized, point.get("k"))
    total = 0
    for st in stages:
        for d, n in st.counts.items():
            chosen = [convs[d][i] for i in select_indices(d, len(convs[d]), n, seed)]
            td, _ = tokenize_conversations(chosen, tokenizer, template, 512)
            total += len(td)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, nargs="+", default=[1, 10, 50])
    ap.add_argument("--baseline-trials", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sweep = sweep_config(Path(tmp))
        t = time.perf_counter()
        prepared = prepare(sweep, Path(tmp) / "cache")
        cold = time.perf_counter() - t
        tokenizer = load_tokenizer(prepared.tokenizer_dir)
        template = template_for(sweep.model.template, tokenizer)
        sizes = {d: prepared.domains[d]["size"] for d in DOMAINS}
        print(f"one-time preparation (read, normalize, tokenize 3 domains, "
              f"{sum(sizes.values())} samples): {cold:.2f} s")

        points = trial_points(max(args.trials))
        base = []
        for p in points[:args.baseline_trials]:
            t = time.perf_counter()
            retokenize_trial(p, sweep, tokenizer, template, sizes)
            base.append(time.perf_counter() - t)
        cached = []
        for p in points[:args.baseline_trials]:
            t = time.perf_counter()
            cached_trial(p, prepared)
            cached.append(time.perf_counter() - t)
        b, c = statistics.median(base), statistics.median(cached)
        print(f"per trial, median of {args.baseline_trials} (same mixtures): re-tokenize "
              f"{b * 1000:.0f} ms, from cache {c * 1000:.1f} ms -> {b / c:.1f}x (goal >= 20x)")

        print("cached cost as trials grow (each trial a different mixture):")
        print(f"{'trials':>7} {'total s':>9} {'ms/trial':>9}")
        for n in args.trials:
            t = time.perf_counter()
            for p in points[:n]:
                cached_trial(p, prepared)
            total = time.perf_counter() - t
            print(f"{n:>7} {total:>9.2f} {total / n * 1000:>9.1f}")


if __name__ == "__main__":
    main()
