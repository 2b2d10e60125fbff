"""The one trainable: a Tune trial plans its stages, fits ONE TorchTrainer through all of them,
and reports every objective once, at the end."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .config import SweepConfig
from .data.mixture import resolve_counts, select_indices, selection_digest
from .data.prepare import PreparedData
from .data.tokenize import load_index
from .strategies import plan_stages


def build_plan(point: dict, space, prepared: PreparedData, seed: int,
               max_length: int | None = None) -> tuple[list[dict], dict]:
    """Stages with exact per-domain counts, and the manifest that names the data they see: per
    stage and domain the sample, token and label-token counts, truncations and a digest of the
    exact indices; per domain the source fingerprint and the rows skipped as malformed."""
    doms = prepared.domains
    counts = resolve_counts(point, list(space.domains), {d: doms[d]["size"] for d in space.domains},
                            {d: doms[d].get("upsample", False) for d in space.domains})
    order = (point.get("order") or space.options("sequential").order
             if point["strategy"] == "sequential" else None)
    stages = plan_stages(point["strategy"], counts, space.specialized, point.get("k"), order,
                         space.options(point["strategy"]).stages)
    used = sorted({d for st in stages for d in st.counts})
    manifest = {"seed": seed, "strategy": point["strategy"], "k": point.get("k"),
                "mixture": {kind: point.get(kind) for kind in ("ratio", "amount", "fractions",
                                                               "counts") if point.get(kind)
                            is not None},
                "counts": counts, "tokenizer": Path(prepared.tokenizer_dir).name,
                "template": prepared.template, "max_length": max_length,
                "domains": {d: {k: doms[d][k] for k in ("source", "format", "fingerprint", "rows",
                                                        "size", "skipped", "key")}
                            for d in used},
                "stages": []}
    # Only when searched, so manifests (and their hashes) of sweeps without them stay as before.
    manifest.update({key: point[key] for key in ("order", "train") if point.get(key)})
    index = {d: load_index(doms[d]["path"]) for d in used}
    for st in stages:
        entry = {"name": st.name, "epochs": st.epochs, "steps": st.steps, "domains": {}}
        for d, n in st.counts.items():
            idx = select_indices(d, doms[d]["size"], n, seed)
            ix = index[d]
            entry["domains"][d] = {"samples": n, "tokens": int(ix["lengths"][idx].sum()),
                                   "trainable_tokens": int(ix["trainable"][idx].sum()),
                                   "truncated": int(ix["truncated"][idx].sum()),
                                   "repeats": -(-n // doms[d]["size"]) if n else 0,
                                   "selection": selection_digest(idx)}
        manifest["stages"].append(entry)
    manifest["hash"] = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]
    return [{"name": s.name, "counts": s.counts, "epochs": s.epochs, "steps": s.steps}
            for s in stages], manifest


def with_train_overrides(sweep: dict, train: dict | None) -> dict:
    """The sweep as this trial trains it: searched hyperparameters replace the sweep's `train:`
    values (lora_r / lora_alpha go into `train.lora`)."""
    if not train:
        return sweep
    tr = dict(sweep["train"])
    for name, value in train.items():
        if name.startswith("lora_"):
            tr["lora"] = {**tr["lora"], name.removeprefix("lora_"): value}
        else:
            tr[name] = value
    return {**sweep, "train": tr}


def run_trial(config: dict, *, sweep: dict, space: dict, prepared: dict, storage: str) -> None:
    from ray import tune
    from ray.train import RunConfig, ScalingConfig

    from .search.spaces import SearchSpace
    from .search.tuner import trial_point
    from .train.launch import lean_torch_trainer_cls
    from .train.worker import train_worker

    if config.get("seed") is not None:  # a grid sweep repeating points over seeds
        sweep = {**sweep, "train": {**sweep["train"], "seed": int(config["seed"])}}
    sweep = with_train_overrides(sweep, trial_point(config).get("train"))
    cfg = SweepConfig.model_validate(sweep)
    sp = SearchSpace.model_validate(space)
    data = PreparedData(**prepared)
    stages, manifest = build_plan(trial_point(config), sp, data, cfg.train.seed,
                                  cfg.train.max_length)
    tr = cfg.train
    resources = {"CPU": tr.cpus_per_worker, **({"GPU": tr.gpus_per_worker} if tr.gpus_per_worker else {})}
    trial_id = tune.get_context().get_trial_id()
    trainer = lean_torch_trainer_cls()(
        train_worker,
        train_loop_config={"sweep": sweep, "prepared": prepared, "stages": stages,
                           "manifest": manifest},
        scaling_config=ScalingConfig(num_workers=tr.workers, use_gpu=tr.gpus_per_worker > 0,
                                     resources_per_worker=resources),
        run_config=RunConfig(name=f"train-{trial_id}", storage_path=storage,
                             callbacks=_pruning_callbacks(cfg)))
    result = trainer.fit()
    metrics = dict(result.metrics or {})
    metrics.update({f"samples_{d}": n for d, n in manifest["counts"].items()})
    if cfg.search.prune:  # so the final result, too, counts the epochs the pruner saw
        from .search.pruning import EPOCH

        metrics[EPOCH] = stages[-1]["epochs"] or cfg.train.epochs
    metrics.update(manifest_hash=manifest["hash"], manifest=json.dumps(manifest),
                   records_dir=_location(result.checkpoint) if result.checkpoint else "")
    tune.report(metrics)


def _pruning_callbacks(cfg: SweepConfig) -> list:
    if cfg.search.prune is None:
        return []
    from .search.pruning import IntermediateReports

    return [IntermediateReports()]


def _location(checkpoint) -> str:
    """The checkpoint as a path, or as a URI when it lives in object storage."""
    import pyarrow.fs as pafs

    if isinstance(checkpoint.filesystem, pafs.LocalFileSystem):
        return checkpoint.path
    return f"{checkpoint.filesystem.type_name}://{checkpoint.path}"
