"""`sftmix eval`: score any causal LM (hub id or local path) on the ability benchmarks, outside a
sweep, with the same generation, scorers, sandbox and cache a trial uses."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from ..config import BenchConfig, CodeBenchConfig, EvaluateConfig, JudgeConfig

# benchmark name -> (ability, source, default max_new_tokens)
BENCHMARKS = {"gsm8k": ("math", None, 256), "humaneval": ("code", "humaneval", 512),
              "mt_bench": ("general", "mt_bench", 1024), "lab_math": ("math", "lab", 64),
              "lab_code": ("code", "lab", 80), "lab_general": ("general", "lab", 32)}
FULL_SIZE = {"gsm8k": 1319, "humaneval": 164, "mt_bench": 80, "lab_math": 64, "lab_code": 32,
             "lab_general": 64}


DEFAULT_BENCHMARKS = "gsm8k,humaneval,mt_bench"


def parse_abilities(texts: list[str], include_path: str | None = None,
                    limit: int | None = None) -> dict:
    """`--ability NAME=lm_eval:TASK[@METRIC,FILTER]` options as evaluate.abilities entries."""
    from pydantic import ValidationError

    from ..config.abilities import LmEvalAbility, ability_name_problems

    out = {}
    for text in texts:
        name, _, spec = text.partition("=")
        source, _, task = spec.partition(":")
        task, _, metric = task.partition("@")
        if not name or source != "lm_eval" or not task:
            raise ValueError(f"--ability: {text!r} is not NAME=lm_eval:TASK[@METRIC,FILTER] "
                             f"(e.g. labmath=lm_eval:sftmix_lab_math@exact_match,strict-match)")
        named = ability_name_problems([name])
        if named or name in out:
            raise ValueError(f"--ability {name}:" + (named[0].partition(":")[2] if named
                                                     else " given twice"))
        try:
            out[name] = LmEvalAbility(task=task, include_path=include_path, limit=limit,
                                      **({"metric": metric} if metric else {}))
        except ValidationError as exc:
            raise ValueError(f"--ability {name}: " + "; ".join(
                "".join(f"{x}: " for x in e["loc"]) + e["msg"].removeprefix("Value error, ")
                for e in exc.errors())) from None
    return out


def _as_options(problem: str) -> str:
    """lm_eval_problems' 'evaluate.abilities.NAME...' lines, named by the options that set them."""
    problem = re.sub(r"^evaluate\.abilities\.\w+\.include_path", "--include-path", problem)
    return re.sub(r"^evaluate\.abilities\.(\w+)(\.task)?", r"--ability \1", problem)


def eval_options(benchmarks: str | None, abilities: list[str], include_path: str | None,
                 **settings) -> tuple[list[str], EvaluateConfig]:
    """`sftmix eval`'s options checked: (benchmarks, config), or ValueError naming each bad
    option. With --ability and no --benchmarks, only the named abilities are scored."""
    from .lm_eval_run import lm_eval_problems

    if benchmarks is None:
        benchmarks = "" if abilities else DEFAULT_BENCHMARKS
    names = parse_benchmarks(benchmarks, allow_none=bool(abilities))
    extra = parse_abilities(abilities, include_path and str(Path(include_path).resolve()),
                            settings.get("n"))
    cfg = eval_config(names, abilities=extra, **settings)
    problems = list(dict.fromkeys(_as_options(p) for p in lm_eval_problems(extra)))
    if problems:
        raise ValueError("\n".join(problems))
    return names, cfg


def parse_benchmarks(text: str, allow_none: bool = False) -> list[str]:
    names = [b.strip() for b in text.split(",") if b.strip()]
    unknown = [b for b in names if b not in BENCHMARKS]
    if unknown or not (names or allow_none):
        raise ValueError(f"--benchmarks: unknown {unknown or 'none given'}; "
                         f"choose from {', '.join(BENCHMARKS)} (an lm-eval task is an "
                         f"--ability NAME=lm_eval:TASK)")
    abilities = [BENCHMARKS[b][0] for b in names]
    if len(set(abilities)) != len(abilities):
        raise ValueError(f"--benchmarks: give one benchmark per ability, got {names}")
    return names


def eval_config(benchmarks: list[str], *, n: int | None, gsm8k: str, batch_size: int,
                max_new_tokens: int | None, judge_url: str | None, judge_model: str | None,
                samples: int = 1, temperature: float = 0.0, k: list[int] | None = None,
                cache: bool = True, abilities: dict | None = None) -> EvaluateConfig:
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
    return EvaluateConfig(**parts, batch_size=batch_size, judge=judge, cache=cache,
                          abilities=abilities or {})


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
    abilities += list(cfg.abilities)
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
