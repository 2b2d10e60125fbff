"""The one metrics function: generate for each ability's benchmark (sharded over the trial's
workers), score with its evaluator on rank 0, and return scores plus per-sample records."""

from __future__ import annotations

from ..config import ABILITY_NAMES
from ..data.lab import CODE_INSTRUCTION
from .code import score_code
from .general import SCORER_NAME, score_general, score_reference_f1
from .generate import Sampling, generate_sharded
from .math import score_math
from .sandbox import Limits

ABILITIES = ABILITY_NAMES


def sampling_of(bench, seed: int = 0) -> Sampling:
    return Sampling(max_new_tokens=bench.max_new_tokens, samples=bench.samples,
                    temperature=bench.temperature, top_p=bench.top_p, stop=tuple(bench.stop),
                    seed=seed)


def evaluate_abilities(model, tokenizer, cfg, eval_sets: dict, template, *, rank: int = 0,
                       world: int = 1, judge=None, abilities=ABILITIES
                       ) -> tuple[dict, dict] | None:
    """Every rank generates its shard; rank 0 scores and returns (scores, records), the others
    return None. `judge` is a JudgeClient for MT-Bench; without one, general is the offline
    score."""

    def gen(prompts: list[str], bench) -> list[list[str]]:
        return generate_sharded(model, tokenizer, prompts, sampling_of(bench),
                                batch_size=cfg.batch_size, prepend_bos=template.prepend_bos,
                                rank=rank, world=world)

    outputs = {}
    if "math" in abilities:
        outputs["math"] = gen([template.prompt(p["question"]) for p in eval_sets["math"]], cfg.math)
    if "code" in abilities:
        outputs["code"] = gen([template.prompt(f"{CODE_INSTRUCTION}\n\n{p['prompt']}")
                               for p in eval_sets["code"]], cfg.code)
    if "general" in abilities:
        outputs["general"] = _general_outputs(gen, eval_sets["general"], cfg.general, template)
    if rank != 0:
        return None

    scores, records = {}, {}
    if "math" in outputs:
        s, records["math"] = score_math([o[0] for o in outputs["math"]], eval_sets["math"])
        scores.update(s)
    if "code" in outputs:
        s, records["code"] = score_code(outputs["code"], eval_sets["code"], ks=cfg.code.k,
                                        limits=Limits(timeout_s=cfg.code.timeout_s))
        scores.update(s)
    if "general" in outputs:
        s, records["general"], records["general_scorer"] = _score_general(
            outputs["general"], eval_sets["general"], cfg.general, judge, cfg.judge)
        scores.update(s)
    return scores, records


def _general_outputs(gen, items: list[dict], bench, template):
    if bench.source != "mt_bench":
        return [o[0] for o in gen([template.prompt(c["conversations"][0]["value"]) for c in items],
                                  bench)]
    # MT-Bench is two-turn: the second question follows the model's own first answer.
    first = [o[0] for o in gen([template.prompt(q["turns"][0]) for q in items], bench)]
    second_prompts = [template.conversation_prompt([
        {"role": "user", "content": q["turns"][0]}, {"role": "assistant", "content": a},
        {"role": "user", "content": q["turns"][1]}]) for q, a in zip(items, first)]
    second = [o[0] for o in gen(second_prompts, bench)]
    return [[a, b] for a, b in zip(first, second)]


def _score_general(outputs, items, bench, judge, judge_cfg=None) -> tuple[dict, list, str]:
    if bench.source != "mt_bench":
        scores, records = score_general(outputs, items)
        return scores, records, SCORER_NAME
    if judge is not None:
        from .mt_bench import score_mt_bench

        limit = {} if judge_cfg is None else {"max_failed_share": judge_cfg.max_failed_share}
        scores, records = score_mt_bench(items, outputs, judge, **limit)
        return scores, records, f"mt-bench-judge:{judge.model}"
    scores, records = score_reference_f1(items, outputs)
    return scores, records, f"{SCORER_NAME}:mt_bench-references"
