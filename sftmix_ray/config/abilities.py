"""Abilities beyond the study's three: any lm-evaluation-harness task under a name the user
picks, and the per-domain held-out loss. The three (math, code, general) stay the defaults and
are always scored; these add metrics a sweep may name as objectives or constraints."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .strict import Strict

BUILTIN_ABILITIES = ("math", "code", "general")
# Metric names an added ability must not take: the built-in ones and their companions.
_RESERVED_PREFIXES = ("loss_", "stage", "samples_", "code_pass_at_", "mt_bench_")


def score_range(name: str) -> tuple[float, float]:
    """The values an objective can take, for clipping an interval that runs past them (a normal
    or t interval near 0 or 1 does): the three abilities are rates in [0, 1], a held-out loss is
    non-negative. Any other name (an lm-eval metric may be a perplexity) is left unbounded."""
    if name in BUILTIN_ABILITIES:
        return 0.0, 1.0
    if name.startswith("loss_"):
        return 0.0, float("inf")
    return float("-inf"), float("inf")


class LmEvalAbility(Strict):
    """One lm-evaluation-harness task scored on the trial's trained model, in memory."""

    source: Literal["lm_eval"] = "lm_eval"
    task: str = Field(description="a built-in lm-eval task name, or a task in a local YAML "
                      "(found through include_path; the lab's tasks are always included)")
    include_path: str | None = Field(None, description="a directory of task YAMLs, relative "
                                     "to the sweep file or cwd")
    metric: str = Field("acc,none", description="'<metric>,<filter>' as lm-eval reports it, "
                        "e.g. 'exact_match,strict-match' or 'acc,none'")
    limit: int | None = Field(None, gt=0, description="the task's first N documents")
    num_fewshot: int | None = Field(None, ge=0)
    apply_chat_template: bool = Field(False, description="format prompts with the tokenizer's "
                                      "chat template (lm-eval's own option)")
    batch_size: int = Field(8, gt=0)

    @model_validator(mode="after")
    def _metric_shape(self):
        if self.metric.count(",") != 1 or not all(self.metric.split(",")):
            raise ValueError(f"metric: {self.metric!r} is not '<metric>,<filter>' (e.g. "
                             f"'acc,none')")
        return self


class HeldoutLossConfig(Strict):
    """`loss_<domain>`: each lab domain's mean token loss on held-out samples the trial never
    trained on, after every epoch (metric history) and at the end. Minimize it."""

    enabled: bool = True
    n: int = Field(32, gt=0, description="held-out samples per domain")


def ability_name_problems(names) -> list[str]:
    problems = []
    for name in names:
        if name in BUILTIN_ABILITIES or name.startswith(_RESERVED_PREFIXES) or \
                not name.replace("_", "a").isalnum() or not name[:1].isalpha():
            problems.append(f"evaluate.abilities.{name}: a name of letters, digits and '_', "
                            f"not one of {', '.join(BUILTIN_ABILITIES)} and not starting with "
                            f"{', '.join(_RESERVED_PREFIXES)}")
    return problems
