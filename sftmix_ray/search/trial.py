"""The one trainable: a Tune trial plans its stages, fits ONE TorchTrainer through all of them,
and reports every objective once, at the end. It sits beside the tuner that owns it."""

from __future__ import annotations

import json

from ..config.point import TrialPoint
from ..config.schema import SweepConfig
from ..config.space import SearchSpace
from ..data.prepare import PreparedData
from ..evaluate.sets import EvalSets
from ..plan.manifest import build_plan
from ..train.job import TrainJob
from ..train.reports import EPOCH


def run_trial(config: dict, *, sweep: SweepConfig, space: SearchSpace, prepared: PreparedData,
              eval_sets: EvalSets, storage: str, base_model: str | None = None) -> None:
    from ray import tune
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig

    from ..train.launch import lean_torch_trainer_cls
    from ..train.worker import train_worker

    point = TrialPoint.of_trial(config)
    trial_sweep = sweep.for_trial(point)  # validates only what the point changes
    tr = trial_sweep.train
    stages, manifest = build_plan(point, space, prepared, tr.seed, tr.max_length)
    prune = sweep.search.prune is not None
    job = TrainJob(model=sweep.model, train=tr, evaluate=sweep.evaluate, prepared=prepared,
                   eval_sets=eval_sets, stages=stages, manifest=manifest,
                   prune_objective=next(iter(sweep.search.objectives)) if prune else None,
                   base_model=base_model, model_dir=_model_dir(storage))
    resources = {"CPU": tr.cpus_per_worker,
                 **({"GPU": tr.gpus_per_worker} if tr.gpus_per_worker else {})}
    trainer = lean_torch_trainer_cls()(
        train_worker, train_loop_config=job.loop_config(),
        # a collective that some rank never enters fails the trial by name after this long,
        # instead of hanging it (30 min by default, as NCCL's own)
        torch_config=TorchConfig(timeout_s=int(tr.collective_timeout_s)),
        scaling_config=ScalingConfig(num_workers=tr.workers, use_gpu=tr.gpus_per_worker > 0,
                                     resources_per_worker=resources),
        run_config=RunConfig(name=f"train-{tune.get_context().get_trial_id()}",
                             storage_path=storage, callbacks=_pruning_callbacks(prune)))
    result = trainer.fit()
    metrics = dict(result.metrics or {})
    metrics.update({f"samples_{d}": n for d, n in manifest["counts"].items()})
    if prune:  # so the final result, too, counts the epochs the pruner saw
        metrics[EPOCH] = stages[-1].epochs or tr.epochs
    metrics.update(manifest_hash=manifest["hash"], manifest=json.dumps(manifest),
                   records_dir=_location(result.checkpoint) if result.checkpoint else "")
    tune.report(metrics)


def _model_dir(storage: str) -> str | None:
    """The kept model's place on a filesystem storage (beside the trials' checkpoints): written
    there once, instead of into a local temporary directory that Ray then copies (27 GB for a
    7 B model in float32, 13.5 in bf16). Object storage keeps Ray's upload."""
    from pathlib import Path

    from ray import tune

    from ..storage import is_uri

    return None if is_uri(storage) else str(Path(storage) / "models" /
                                             tune.get_context().get_trial_id())


def _pruning_callbacks(prune: bool) -> list:
    if not prune:
        return []
    from .pruning import IntermediateReports

    return [IntermediateReports()]


def _location(checkpoint) -> str:
    """The checkpoint as a path, or as a URI when it lives in object storage."""
    import pyarrow.fs as pafs

    if isinstance(checkpoint.filesystem, pafs.LocalFileSystem):
        return checkpoint.path
    return f"{checkpoint.filesystem.type_name}://{checkpoint.path}"
