"""Evaluation as a trial (or `sftmix eval`) runs it: look the weights up in the evaluation cache,
otherwise generate on every rank, score on rank 0, and store the result."""

from __future__ import annotations

from .abilities import ABILITIES, evaluate_abilities
from .cache import EvalCache, eval_key, weights_digest
from .intervals import score_intervals


def judge_client(cfg):
    """The MT-Bench judge for `evaluate.judge`, or None (then general is the offline score).
    The key comes from the judge's own `api_key_env`; OPENAI_API_KEY only for OpenAI itself."""
    if cfg.judge is None or cfg.general.source != "mt_bench":
        return None
    from .judge import JudgeClient, api_key_for

    j = cfg.judge
    return JudgeClient(base_url=j.base_url, model=j.model,
                       api_key=api_key_for(j.base_url, j.api_key_env), timeout_s=j.timeout_s,
                       max_retries=j.max_retries,
                       secret_env=(j.api_key_env, "SFTMIX_JUDGE_API_KEY", "OPENAI_API_KEY"))


def run_evaluation(model, tokenizer, cfg, eval_sets: dict, template, *, eval_id: str,
                   cache_dir=None, rank: int = 0, world: int = 1, abilities=None,
                   weights_id: str | None = None):
    """(scores, records, cache_hit) on rank 0, None elsewhere. `weights_id` names the weights
    when the caller knows what determined them (a trial: its training lineage); otherwise they
    are hashed. Generation runs in `cfg.dtype` (precision.py), on a copy if it differs."""
    from .precision import generation_dtype, generation_model

    abilities = list(abilities or [*ABILITIES, *cfg.abilities])
    dtype = generation_dtype(cfg.dtype, model)
    settings = {"evaluate": cfg.model_dump(mode="json", exclude={"cache", "dtype"}),
                "eval_sets": eval_id,
                "template": template.spec(), "abilities": list(abilities)}
    if cfg.abilities:
        from .lm_eval_run import tasks_digest

        settings["lm_eval_tasks"] = tasks_digest(cfg.abilities)
    if dtype != "float32":  # float32 entries keep the keys they had before dtypes were chosen
        settings["generation_dtype"] = dtype
    key = eval_key(weights_id or weights_digest(model), settings)
    cache = EvalCache(cache_dir if cfg.cache else None)
    hit = cache.get(key)  # every rank decides alike: the file exists before any rank generates
    if hit is not None:
        scores, records = hit
        return (_with_intervals(scores, records, cfg), records, True) if rank == 0 else None
    with generation_model(model, dtype) as gen:
        result = evaluate_abilities(gen, tokenizer, cfg, eval_sets, template, rank=rank,
                                    world=world, judge=judge_client(cfg) if rank == 0 else None,
                                    abilities=[a for a in abilities if a in ABILITIES])
        if result is not None and any(a in cfg.abilities for a in abilities):
            result = _with_lm_eval(result, gen, tokenizer, cfg, template, abilities)
    if result is None:
        return None
    scores, records = result
    scores = _with_intervals(scores, records, cfg)
    records["eval_key"] = key
    records["generation_dtype"] = dtype
    if not scores.get("general_judge_failures"):
        # a score that lost grades to the judge is kept out of the cache, so that asking again
        # grades again instead of making a passing outage permanent
        cache.put(key, scores, records)
    return scores, records, False


def _with_lm_eval(result, model, tokenizer, cfg, template, abilities):
    """Rank 0 scores the lm-eval abilities on the full weights it holds (under FSDP, inside
    `inference_weights`): the other ranks wait at their next collective."""
    from .lm_eval_run import score_lm_eval

    scores, records = result
    extra, extra_records = score_lm_eval(
        model, tokenizer, {a: cfg.abilities[a] for a in abilities if a in cfg.abilities},
        prepend_bos=template.prepend_bos)
    return {**scores, **extra}, {**records, **extra_records}


def _with_intervals(scores: dict, records: dict, cfg) -> dict:
    """Each ability's 95% interval beside its score, from the per-problem records (entries
    cached before intervals existed get theirs too: the records are all it takes)."""
    return {**scores, **score_intervals(records, cfg.code.k[0])}
