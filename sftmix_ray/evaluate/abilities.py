"""The one metrics function: generate for each ability's benchmark, score with its evaluator."""

from __future__ import annotations

from ..data.lab import CODE_INSTRUCTION
from ..data.template import VicunaTemplate
from .code import score_code
from .general import SCORER_NAME, score_general
from .generate import generate
from .math import score_math
from .sandbox import Limits

ABILITIES = ("math", "code", "general")


def evaluate_abilities(model, tokenizer, cfg, eval_sets: dict, template=VicunaTemplate()
                       ) -> tuple[dict, dict]:
    def gen(prompts, bench):
        return generate(model, tokenizer, [template.prompt(p) for p in prompts],
                        bench.max_new_tokens, batch_size=cfg.batch_size,
                        prepend_bos=template.prepend_bos)

    math_set, code_set, gen_set = eval_sets["math"], eval_sets["code"], eval_sets["general"]
    m_out = gen([p["question"] for p in math_set], cfg.math)
    c_out = gen([f"{CODE_INSTRUCTION}\n\n{p['prompt']}" for p in code_set], cfg.code)
    g_out = gen([c["conversations"][0]["value"] for c in gen_set], cfg.general)
    scores, records = {}, {}
    s, records["math"] = score_math(m_out, math_set)
    scores.update(s)
    s, records["code"] = score_code([[o] for o in c_out], code_set,
                                    limits=Limits(timeout_s=cfg.code.timeout_s))
    scores.update(s)
    s, records["general"] = score_general(g_out, gen_set)
    scores.update(s)
    records["general_scorer"] = SCORER_NAME
    return scores, records
