"""Prototype for issue 14 (not a product feature yet): does a lab base model, pretrained on
free-form lab "web" text (arithmetic facts in prose, Python snippets with docstrings from training
keys only, Q/A chats: none in the SFT formats), make SFT scores move on the quickstart's data?

    python benchmarks/lab_base_prototype.py pretrain EPOCHS LR N_DOCS MATH_SHARE OUT.pt
    python benchmarks/lab_base_prototype.py base OUT.pt     # fine-tune the base on 3 mixtures
    python benchmarks/lab_base_prototype.py scratch         # the same from random weights

Measured 2026-11-25 on 2 busy cores (math / code / general on the quickstart's evaluation sets):
n=900 even: scratch 0.000 / 0.000 / 0.005, base (1.7 M tokens, 60% arithmetic, 213 s of
pretraining) 0.047 / 0.188 / 0.412; n=3000 at 45/45/10: scratch 0.109 / 0.188 / 0.268, base
0.156 / 0.219 / 0.408. General saturates early as in the study, code rises at small amounts;
math stays weak at this size. Storage goes to /tmp/lab_base_prototype.
"""

import operator
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from sftmix_ray.config import TrialPoint, load_sweep
from sftmix_ray.data import lab
from sftmix_ray.data.prepare import prepare
from sftmix_ray.data.template import template_for
from sftmix_ray.data.tokenizer import load_tokenizer
from sftmix_ray.evaluate.sets import prepare_eval_sets
from sftmix_ray.evaluate.suite import run_evaluation
from sftmix_ray.plan.manifest import build_plan
from sftmix_ray.train.loop import StageData, train_stage
from sftmix_ray.train.model import build_model
from sftmix_ray.train.worker import _stage_data

torch.set_num_threads(2)
OUT = Path("/tmp/lab_base_prototype")
sweep, space = load_sweep(ROOT / "sweeps/quickstart.yaml", {"storage": str(OUT / "runs")})
cache = OUT / "runs" / "cache"
prepared = prepare(sweep, cache)
evs = prepare_eval_sets(sweep.evaluate, cache)
tok = load_tokenizer(prepared.tokenizer_dir)
template = template_for(sweep.model.template, tok)


def corpus(seed=0, n_docs=12000, math_share=0.4):
    rng = random.Random(seed)
    docs = []
    names, items = lab._NAMES, lab._ITEMS
    for _ in range(n_docs):
        kind = rng.random()
        if kind < math_share:  # arithmetic facts and worked sums in prose
            a, b = rng.randint(0, 30), rng.randint(0, 30)
            op = rng.choice("+-*")
            if op == "-":
                a, b = max(a, b), min(a, b)
            if op == "*":
                a, b = rng.randint(1, 12), rng.randint(1, 12)
            ops = {"+": operator.add, "-": operator.sub, "*": operator.mul}
            r = ops[op](a, b)
            n, it = rng.choice(names), rng.choice(items)
            c = rng.randint(1, max(1, a + b - 1))
            two = f"{a} + {b} = {a + b}, and {a + b} - {c} = {a + b - c}."
            t = rng.choice(
                [
                    two,
                    f"{a} {op} {b} = {r}.",
                    f"We know that {a} {op} {b} is {r}.",
                    f"{n} counted the {it}: {a} {op} {b} makes {r} {it}.",
                    f"Note: {a} {op} {b} = {r}, and {b} {op} {a} = {ops[op](b, a)}.",
                ]
            )
            docs.append(t)
        elif (
            kind < math_share + (1 - math_share) * 0.55
        ):  # python snippets with docstrings (training keys only)
            fam = rng.choice(lab._CODE_FAMILIES)
            k = rng.randint(2, 50)
            if lab._is_eval_key((fam.name, k)):
                continue
            name = fam.name.format(k=k)
            x = rng.choice(fam.inputs)
            docs.append(
                f'def {name}({fam.arg}):\n    """{fam.doc.format(k=k)}\n    """\n'
                f"    {fam.body.format(k=k)}\n\n# {name}({x!r}) gives {fam.ref(k, x)!r}\n"
            )
        else:  # conversations in free form
            key, chat = lab._general_chat(rng)
            q, a = chat["conversations"][0]["value"], chat["conversations"][1]["value"]
            docs.append(
                rng.choice(
                    [f"Someone asked: {q} The reply was: {a}", f"Q: {q}\nA: {a}", f"{q} -- {a}"]
                )
            )
    return docs


def pretrain(model, docs, epochs, lr):
    bos, eos = tok.bos_token_id, tok.eos_token_id
    samples = []
    for d in docs:
        ids = np.array(
            [bos] + tok(d, add_special_tokens=False)["input_ids"] + [eos], dtype=np.int64
        )
        ids = ids[:256]
        samples.append((ids, ids.copy()))
    hp = sweep.train.model_copy(
        update={"lr": lr, "epochs": epochs, "batch_size": 32, "warmup_ratio": 0.02}
    )
    t = time.time()
    rec = train_stage(model, StageData("pretrain", samples, epochs), hp, tok.pad_token_id, index=0)
    print(
        "pretrain",
        {k: rec[k] for k in ("steps", "tokens", "loss")},
        f"{time.time() - t:.0f}s",
        flush=True,
    )


def sft_eval(model, point):
    stages, manifest = build_plan(TrialPoint.from_wire(point), space, prepared, 0, 256)
    data = _stage_data(prepared, stages, sweep.train.epochs, 0)
    t = time.time()
    for j, st in enumerate(data):
        train_stage(model, st, sweep.train, tok.pad_token_id, index=j)
    ts = time.time() - t
    scores, _, _ = run_evaluation(
        model, tok, sweep.evaluate, evs.load(), template, eval_id=evs.key, cache_dir=None
    )
    return {k: round(v, 3) for k, v in scores.items() if k in ("math", "code", "general")}, round(
        ts
    )


mode = sys.argv[1]
points = [
    {
        "strategy": "multi_task",
        "ratio": {"math": 0.34, "code": 0.33, "general": 0.33},
        "amount": 900,
    },
    {"strategy": "multi_task", "ratio": {"math": 0.1, "code": 0.1, "general": 0.8}, "amount": 900},
    {
        "strategy": "multi_task",
        "ratio": {"math": 0.45, "code": 0.45, "general": 0.1},
        "amount": 3000,
    },
]
base_path = Path(sys.argv[-1]) if sys.argv[-1].endswith(".pt") else OUT / "base.pt"
if mode == "pretrain":
    model = build_model(sweep.model, len(tok), tok, 0, sweep.train)
    docs = corpus(n_docs=int(sys.argv[4]), math_share=float(sys.argv[5]))
    print(len(docs), "docs", sum(len(d) for d in docs), "chars", flush=True)
    pretrain(model, docs, int(sys.argv[2]), float(sys.argv[3]))
    torch.save(model.state_dict(), base_path)
else:
    for p in points:
        model = build_model(sweep.model, len(tok), tok, 0, sweep.train)
        if mode == "base":
            model.load_state_dict(torch.load(base_path))
        print(mode, p["ratio"], p["amount"], *sft_eval(model, p), flush=True)
