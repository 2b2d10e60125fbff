"""The one trainable: a Tune trial plans its stages, fits ONE TorchTrainer through all of them,
and reports every objective once, at the end."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from .config import SweepConfig
from .data.mixture import apportion, domain_order, select_prefix
from .data.prepare import PreparedData
from .strategies import plan_stages


def build_plan(point: dict, space, prepared: PreparedData, seed: int) -> tuple[list[dict], dict]:
    """Stages with exact per-domain counts, and the manifest that names the data they see."""
    counts = apportion({d: point["ratio"].get(d, 0.0) for d in space.domains}, int(point["amount"]))
    for d, n in counts.items():
        if n > prepared.domains[d]["size"]:
            raise ValueError(f"trial asks for {n} samples of domain {d!r}, which has "
                             f"{prepared.domains[d]['size']} (raise domains.{d}.pool or lower "
                             f"the amount)")
    order = space.options("sequential").order if point["strategy"] == "sequential" else None
    stages = plan_stages(point["strategy"], counts, space.specialized, point.get("k"), order)
    manifest = {"seed": seed, "data_key": prepared.key, "strategy": point["strategy"],
                "k": point.get("k"), "stages": []}
    lengths = {d: np.diff(np.load(prepared.domains[d]["path"])["offsets"])
               for d in {d for st in stages for d in st.counts}}
    for st in stages:
        entry = {"name": st.name, "domains": {}}
        for d, n in st.counts.items():
            idx = select_prefix(domain_order(d, len(lengths[d]), seed), n, d)
            entry["domains"][d] = {"samples": n, "tokens": int(lengths[d][idx].sum())}
        manifest["stages"].append(entry)
    manifest["hash"] = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]
    return [{"name": s.name, "counts": s.counts} for s in stages], manifest


def run_trial(config: dict, *, sweep: dict, space: dict, prepared: dict, storage: str) -> None:
    from ray import tune
    from ray.train import RunConfig, ScalingConfig

    from .search.spaces import SearchSpace
    from .search.tuner import trial_point
    from .train.launch import lean_torch_trainer_cls
    from .train.worker import train_worker

    cfg = SweepConfig.model_validate(sweep)
    sp = SearchSpace.model_validate(space)
    data = PreparedData(**prepared)
    stages, manifest = build_plan(trial_point(config), sp, data, cfg.train.seed)
    tr = cfg.train
    resources = {"CPU": tr.cpus_per_worker, **({"GPU": tr.gpus_per_worker} if tr.gpus_per_worker else {})}
    trial_id = tune.get_context().get_trial_id()
    trainer = lean_torch_trainer_cls()(
        train_worker,
        train_loop_config={"sweep": sweep, "prepared": prepared, "stages": stages},
        scaling_config=ScalingConfig(num_workers=tr.workers, use_gpu=tr.gpus_per_worker > 0,
                                     resources_per_worker=resources),
        run_config=RunConfig(name=f"train-{trial_id}", storage_path=storage))
    result = trainer.fit()
    metrics = dict(result.metrics or {})
    metrics.update(manifest_hash=manifest["hash"], manifest=json.dumps(manifest),
                   records_dir=result.checkpoint.path if result.checkpoint else "")
    tune.report(metrics)
