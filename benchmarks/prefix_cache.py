"""A DMT k-sweep (the study's five k values) with the stage-prefix cache against without it.

    python benchmarks/prefix_cache.py [--amount 1500] [--layers 2]

Both sweeps run the same five trials, one after another in this process, through the same code
the Train worker runs (`train.worker.run_stages`): plan from the lab's token cache, train the
stages, no Ray (the cache is what is measured, not orchestration). With the cache, DMT's stage 1
(math + code, identical for every k) is trained by the first trial and loaded by the other four.
Prints trained tokens and training seconds for both, their ratios (goal ≤ 0.6× the compute), and
checks that every trial ends with the same weights either way.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab_setup import bench_sweep  # noqa: E402

from sftmix_ray.config.point import TrialPoint  # noqa: E402
from sftmix_ray.config.space import SearchSpace  # noqa: E402
from sftmix_ray.data.prepare import prepare  # noqa: E402
from sftmix_ray.data.tokenizer import load_tokenizer  # noqa: E402
from sftmix_ray.plan.manifest import build_plan  # noqa: E402
from sftmix_ray.train.model import build_model  # noqa: E402
from sftmix_ray.train.prefix_cache import PrefixCache, prefix_keys  # noqa: E402
from sftmix_ray.train.worker import _stage_data, run_stages  # noqa: E402

KS = [1, 0.25, 0.0625, 0.015625, 0.00390625]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--amount", type=int, default=1500)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        sweep = bench_sweep(tmp, real_math=False, layers=args.layers)
        space = SearchSpace.model_validate({
            "domains": ["math", "code", "general"], "specialized": ["math", "code"],
            "amount": {"low": 1, "high": 10 ** 6}, "strategies": {"dmt": {"k": KS}}})
        prepared = prepare(sweep, Path(tmp) / "cache")
        tokenizer = load_tokenizer(prepared.tokenizer_dir)
        hp = sweep.train
        ratio = {"math": 0.4, "code": 0.4, "general": 0.2}

        def sweep_once(cache) -> tuple[int, float, list]:
            tokens, seconds, finals = 0, 0.0, []
            for k in KS:
                point = TrialPoint(ratio=ratio, amount=args.amount, strategy="dmt", k=k)
                stages, manifest = build_plan(point, space, prepared, 0, 256)
                data = _stage_data(prepared, stages, 1, 0)
                model = build_model(sweep.model, len(tokenizer), tokenizer, 0, sweep.train)
                keys = prefix_keys(sweep.model, sweep.train, prepared, manifest)
                t = time.perf_counter()
                records = run_stages(model, model, data, hp, tokenizer.pad_token_id,
                                     keys=keys if cache else [], cache=cache, rank=0, world=1,
                                     device=torch.device("cpu"), autocast_dtype=None)
                seconds += time.perf_counter() - t
                tokens += sum(r["tokens"] for r in records if not r["cached"])
                finals.append(model.lm_head.weight.detach().clone())
            return tokens, seconds, finals

        base_tokens, base_s, base_finals = sweep_once(None)
        cache_tokens, cache_s, cache_finals = sweep_once(PrefixCache(Path(tmp) / "prefix"))
        same = all(torch.equal(a, b) for a, b in zip(base_finals, cache_finals))
        print(f"DMT k-sweep, k in {KS}, amount {args.amount} (math/code/general 0.4/0.4/0.2), "
              f"tiny Llama {args.layers} layers, {args.threads} threads")
        print(f"{'':14}{'trained tokens':>16}{'train s':>10}")
        print(f"{'no cache':14}{base_tokens:>16}{base_s:>10.1f}")
        print(f"{'prefix cache':14}{cache_tokens:>16}{cache_s:>10.1f}")
        print(f"compute ratio (cache / no cache): tokens {cache_tokens / base_tokens:.2f}x, "
              f"seconds {cache_s / base_s:.2f}x (goal <= 0.6x)")
        print(f"final weights identical with and without the cache: {same}")
        if not same:
            sys.exit(1)


if __name__ == "__main__":
    main()
