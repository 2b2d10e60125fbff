"""`sftmix eval`: score any causal LM (hub id or local path) on the ability benchmarks, outside a
sweep, with the same generation, scorers, sandbox and cache a trial uses."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..config import BenchConfig, CodeBenchConfig, EvaluateConfig, JudgeConfig

# benchmark name -> (ability, source, default max_new_tokens)
BENCHMARKS = {"gsm8k": ("math", None, 256), "humaneval": ("code", "humaneval", 512),
              "mt_bench": ("general", "mt_bench", 1024), "lab_math": ("math", "lab", 64),
              "lab_code": ("code", "lab", 80), "lab_general": ("general", "lab", 32)}
FULL_SIZE = {"gsm8k": 1319, "humaneval": 164, "mt_bench": 80, "lab_math": 64, "lab_code": 32,
             "lab_general": 64}


def parse_benchmarks(text: str) -> list[str]:
    names = [b.strip() for b in text.split(",") if b.strip()]
    unknown = [b for b in names if b not in BENCHMARKS]
    if unknown or not names:
        raise ValueError(f"--benchmarks: unknown {unknown or 'none given'}; "
                         f"choose from {', '.join(BENCHMARKS)}")
    abilities = [BENCHMARKS[b][0] for b in names]
    if len(set(abilities)) != len(abilities):
        raise ValueError(f"--benchmarks: give one benchmark per ability, got {names}")
    return names


def eval_config(benchmarks: list[str], *, n: int | None, gsm8k: str, batch_size: int,
                max_new_tokens: int | None, judge_url: str | None, judge_model: str | None,
                samples: int = 1, temperature: float = 0.0, k: list[int] | None = None,
                cache: bool = True) -> EvaluateConfig:
    parts: dict = {}
    for b in benchmarks:
        ability, source, default_tokens = BENCHMARKS[b]
        common = {"source": gsm8k if b == "gsm8k" else source, "n": n or FULL_SIZE[b],
                  "max_new_tokens": max_new_tokens or default_tokens, "samples": samples,
                  "temperature": temperature}
        parts[ability] = (CodeBenchConfig(**common, k=k or [1]) if ability == "code"
                          else BenchConfig(**common))
    judge = None
    if judge_url or judge_model:
        if not (judge_url and judge_model):
            raise ValueError("--judge-url and --judge-model go together")
        judge = JudgeConfig(base_url=judge_url, model=judge_model)
    return EvaluateConfig(**parts, batch_size=batch_size, judge=judge, cache=cache)


def load_model(model_id: str):
    import torch
    from transformers import AutoModelForCausalLM

    from ..data.tokenizer import load_tokenizer

    gpu = torch.cuda.is_available()
    dtype = torch.bfloat16 if gpu and torch.cuda.is_bf16_supported() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_id, dtype=dtype)
    if gpu:
        model = model.to("cuda")
    return model, load_tokenizer(model_id)


def evaluate_model(model_id: str, benchmarks: list[str], cfg: EvaluateConfig, *, template: str,
                   cache_dir: Path | None, out_dir: Path) -> dict:
    from ..data.template import template_for
    from .benchmarks import load_eval_sets
    from .suite import run_evaluation

    t0 = time.perf_counter()
    model, tokenizer = load_model(model_id)
    abilities = [BENCHMARKS[b][0] for b in benchmarks]
    eval_sets = load_eval_sets(cfg, abilities)
    eval_id = json.dumps({a: [len(v)] for a, v in eval_sets.items()})
    tmpl = template_for(template, tokenizer)
    scores, records, hit = run_evaluation(model, tokenizer, cfg, eval_sets, tmpl,
                                          eval_id=f"{benchmarks}:{eval_id}", cache_dir=cache_dir,
                                          abilities=abilities)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "eval_records.json").write_text(json.dumps(records, indent=1))
    (out_dir / "scores.json").write_text(json.dumps(scores, indent=1))
    return {"scores": scores, "records": records, "cache_hit": hit,
            "seconds": time.perf_counter() - t0, "general_scorer": records.get("general_scorer")}
