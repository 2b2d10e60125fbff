"""One trial's training job, typed: what the trial hands its Train workers (through
`train_loop_config`, which pickles it) and nothing they must parse or validate again."""

from __future__ import annotations

from dataclasses import dataclass

from ..config.schema import EvaluateConfig, ModelConfig, TrainConfig
from ..data.prepare import PreparedData
from ..evaluate.sets import EvalSets
from ..plan.strategies import Stage

JOB_KEY = "job"  # the train_loop_config key


@dataclass(frozen=True)
class TrainJob:
    model: ModelConfig
    train: TrainConfig           # the sweep's, with this trial's seed and searched values
    evaluate: EvaluateConfig
    prepared: PreparedData
    eval_sets: EvalSets
    stages: list[Stage]
    manifest: dict
    prune_objective: str | None = None  # evaluated after each epoch of the final stage
    base_model: str | None = None  # the lab base model's checkpoint a tiny model starts from
    # where rank 0 writes the kept model straight, on the sweep's storage (a path); None: inside
    # the trial's Ray checkpoint (object storage, which Ray uploads from a local copy)
    model_dir: str | None = None

    def loop_config(self) -> dict:
        return {JOB_KEY: self}
