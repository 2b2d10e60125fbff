"""How the lab's abilities move with SFT data: the lab base model (built or taken from the cache,
`train/lab_base.py`) fine-tuned on single-domain or mixed points outside Ray, each scored by the
sweep's own evaluators. This is how the lab was calibrated (base model size and pretraining, SFT
learning rate, evaluation sizes); a sweep runs the same code per trial.

    python benchmarks/lab_calibration.py [--sweep sweeps/quickstart.yaml] [--sft-lr 2e-3]
        [--scratch] --points math=0 math=16 math=1000 code=62 math=900,code=900,general=900

A point names samples per domain (index selection as in a trial, seed 0); `math=0` scores the
base model with no SFT. `--scratch` fine-tunes random weights instead of the base. One JSON line
per point: the three scores, training and evaluation seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sftmix_ray.config import load_sweep  # noqa: E402
from sftmix_ray.data.mixture import select_indices  # noqa: E402
from sftmix_ray.data.prepare import prepare  # noqa: E402
from sftmix_ray.data.template import template_for  # noqa: E402
from sftmix_ray.data.tokenizer import load_tokenizer  # noqa: E402
from sftmix_ray.evaluate.sets import prepare_eval_sets  # noqa: E402
from sftmix_ray.evaluate.suite import run_evaluation  # noqa: E402
from sftmix_ray.storage import cache_root  # noqa: E402
from sftmix_ray.train.lab_base import ensure_lab_base  # noqa: E402
from sftmix_ray.train.loop import StageData, select, train_stage  # noqa: E402
from sftmix_ray.train.model import build_model  # noqa: E402


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sweep", default=str(ROOT / "sweeps" / "quickstart.yaml"))
    ap.add_argument("--sft-lr", type=float, default=None, help="default: the sweep's train.lr")
    ap.add_argument("--scratch", action="store_true", help="random weights, no base model")
    ap.add_argument("--points", nargs="+", required=True)
    args = ap.parse_args()
    torch.set_num_threads(2)
    sweep, _ = load_sweep(args.sweep, {"train.lr": args.sft_lr})
    if args.scratch:  # an override of None means "not given", so the model is changed here
        tiny = sweep.model.tiny.model_copy(update={"pretrain": None})
        sweep = sweep.model_copy(update={"model": sweep.model.model_copy(update={"tiny": tiny})})
    cache = cache_root(sweep.storage, sweep.cache_dir)
    prepared = prepare(sweep, cache)
    eval_sets = prepare_eval_sets(sweep.evaluate, cache)
    tok = load_tokenizer(prepared.tokenizer_dir)
    template = template_for(sweep.model.template, tok)
    base = ensure_lab_base(sweep.model, prepared.tokenizer_dir, cache,
                           say=lambda m: print(m, file=sys.stderr, flush=True))
    if base is not None:
        print(json.dumps({"base": base.key, **base.info}), flush=True)
    for point in args.points:
        counts = {d: int(n) for d, n in (part.split("=") for part in point.split(","))}
        model = build_model(sweep.model, len(tok), tok, 0, sweep.train,
                            base=base.path if base else None)
        samples = []
        for d, n in counts.items():
            if n:
                td = prepared.tokenized(d)  # read once per domain, not once per call
                samples += select(td, select_indices(d, len(td), n, 0))
        t0 = time.time()
        if samples:
            train_stage(model, StageData("sft", samples, sweep.train.epochs), sweep.train,
                        tok.pad_token_id, index=0)
        t1 = time.time()
        scores, _, _ = run_evaluation(model, tok, sweep.evaluate, eval_sets.load(), template,
                                      eval_id=eval_sets.key, cache_dir=None)
        print(json.dumps({"point": point, "lr": sweep.train.lr,
                          "base": base.key if base else "scratch",
                          **{a: round(scores[a], 3) for a in ("math", "code", "general")},
                          "train_s": round(t1 - t0, 1), "eval_s": round(time.time() - t1, 1)}),
              flush=True)


if __name__ == "__main__":
    main()
