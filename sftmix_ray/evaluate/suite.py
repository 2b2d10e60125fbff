"""Evaluation as a trial (or `sftmix eval`) runs it: look the weights up in the evaluation cache,
otherwise generate on every rank, score on rank 0, and store the result."""

from __future__ import annotations

import os

from .abilities import ABILITIES, evaluate_abilities
from .cache import EvalCache, eval_key, weights_digest


def judge_client(cfg):
    """The MT-Bench judge for `evaluate.judge`, or None (then general is the offline score)."""
    if cfg.judge is None or cfg.general.source != "mt_bench":
        return None
    from .judge import JudgeClient

    j = cfg.judge
    key = os.environ.get(j.api_key_env) or os.environ.get("OPENAI_API_KEY")
    return JudgeClient(base_url=j.base_url, model=j.model, api_key=key, timeout_s=j.timeout_s,
                       max_retries=j.max_retries)


def run_evaluation(model, tokenizer, cfg, eval_sets: dict, template, *, eval_id: str,
                   cache_dir=None, rank: int = 0, world: int = 1, abilities=ABILITIES):
    """(scores, records, cache_hit) on rank 0, None elsewhere."""
    settings = {"evaluate": cfg.model_dump(mode="json", exclude={"cache"}), "eval_sets": eval_id,
                "template": template.spec(), "abilities": list(abilities)}
    key = eval_key(weights_digest(model), settings)
    cache = EvalCache(cache_dir if cfg.cache else None)
    hit = cache.get(key)  # every rank decides alike: the file exists before any rank generates
    if hit is not None:
        return (*hit, True) if rank == 0 else None
    result = evaluate_abilities(model, tokenizer, cfg, eval_sets, template, rank=rank,
                                world=world, judge=judge_client(cfg) if rank == 0 else None,
                                abilities=abilities)
    if result is None:
        return None
    scores, records = result
    records["eval_key"] = key
    cache.put(key, scores, records)
    return scores, records, False
