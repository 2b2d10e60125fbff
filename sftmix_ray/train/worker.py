"""What each Ray Train worker runs for one trial: build the stages, train through all of them,
generate on every rank, score on rank 0, and report once with a checkpoint of the results."""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from ..config import ModelConfig, SweepConfig
from ..data.mixture import select_indices
from ..data.prepare import PreparedData
from .loop import StageData, select, train_stage


def _stage_data(prepared: PreparedData, stages: list[dict], epochs: int, seed: int):
    cache, out = {}, []
    for st in stages:
        samples = []
        for domain, count in st["counts"].items():
            if domain not in cache:
                cache[domain] = prepared.tokenized(domain)
            td = cache[domain]
            samples.extend(select(td, select_indices(domain, len(td), count, seed)))
        out.append(StageData(st["name"], samples, st.get("epochs") or epochs, st.get("steps")))
    return out


def _param_delta(model, initial: dict) -> float:
    import torch

    with torch.no_grad():
        sq = sum(float(((p.detach().cpu() - initial[n]) ** 2).sum())
                 for n, p in model.named_parameters() if n in initial)
    return math.sqrt(sq)


def _broadcast(value, rank: int, world: int):
    if world == 1:
        return value
    import torch.distributed as dist

    box = [value if rank == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def run_stages(model, core, stages, hp, pad_id: int, *, keys: list[str], cache, rank: int,
               world: int, device, autocast_dtype, on_stage_end=None,
               on_final_epoch_end=None) -> list[dict]:
    """Train the stages in order; a stage whose prefix is cached is skipped and its checkpoint
    loaded only when a later stage needs to train from it. Rank 0 takes the decisions (and the
    locks) and broadcasts them, so every rank skips and trains alike."""
    from .model import load_trainable_state, trainable_state

    records, pending = [], None
    for j, stage in enumerate(stages):
        lock, decision = None, "train"
        if cache is not None and j < len(keys):
            if rank == 0:
                if cache.complete(keys[j]):
                    decision = "load"
                else:
                    lock = cache.acquire(keys[j])  # waits while another trial trains it
                    if cache.complete(keys[j]):
                        decision = "load"
                        lock.release()
                        lock = None
            decision = _broadcast(decision, rank, world)
        if decision == "load":
            pending = keys[j]
            _, record = cache.load(keys[j]) if rank == 0 else (None, {})
            records.append({**_broadcast(record, rank, world), "cached": 1, "seconds": 0.0})
            continue
        if pending is not None:
            load_trainable_state(core, cache.load(pending)[0])
            pending = None
        try:
            final = j == len(stages) - 1
            record = train_stage(model, stage, hp, pad_id, index=j, rank=rank, world=world,
                                 device=device, autocast_dtype=autocast_dtype,
                                 on_epoch_end=on_final_epoch_end if final else None)
            if lock is not None:
                cache.publish(keys[j], trainable_state(core), record)
        finally:
            if lock is not None:
                lock.release()
        records.append({**record, "cached": 0})
        if on_stage_end is not None and j < len(stages) - 1:
            on_stage_end(j, record)
    if pending is not None:
        load_trainable_state(core, cache.load(pending)[0])
    return records


def train_worker(cfg: dict) -> None:
    import ray.train
    import ray.train.torch
    import torch

    from ..data.template import template_for
    from ..data.tokenizer import load_tokenizer
    from ..evaluate.suite import run_evaluation
    from .loop import amp_dtype
    from .model import build_model, trainable_state
    from .prefix_cache import PrefixCache, prefix_keys

    t_start = time.perf_counter()
    sweep = SweepConfig.model_validate(cfg["sweep"])
    tr = sweep.train
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(tr.threads_per_worker or max(1, int(tr.cpus_per_worker)))
    device = ray.train.torch.get_device()

    prepared = PreparedData(**cfg["prepared"])
    tokenizer = load_tokenizer(prepared.tokenizer_dir)
    stages = _stage_data(prepared, cfg["stages"], tr.epochs, tr.seed)
    model = build_model(ModelConfig.model_validate(cfg["sweep"]["model"]), len(tokenizer),
                        tokenizer, tr.seed, tr)
    initial = {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}
    model = ray.train.torch.prepare_model(model, parallel_strategy=tr.parallel)
    core = model.module if hasattr(model, "module") else model
    use_cache = tr.prefix_cache and tr.parallel == "ddp"
    cache = PrefixCache(Path(prepared.root) / "prefix") if use_cache else None
    keys = prefix_keys(cfg["sweep"], cfg["prepared"], cfg["manifest"]) if use_cache else []
    hp = SimpleNamespace(**tr.model_dump())

    def stage_checkpoint(j: int, record: dict) -> None:
        """Every rank reports (Train needs them in step); rank 0 attaches the stage's weights."""
        metrics = {f"stage{j}_{k}": v for k, v in record.items() if k != "name"}
        if rank != 0 or not tr.save_model:
            ray.train.report(metrics, checkpoint=None)
            return
        with tempfile.TemporaryDirectory() as tmp:
            torch.save(trainable_state(core), Path(tmp) / "trainable_state.pt")
            (Path(tmp) / "stage.json").write_text(json.dumps(record))
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))

    template = template_for(sweep.model.template, tokenizer)
    eval_sets = {}  # read once, on the first evaluation (pruning evaluates after every epoch)

    def evaluate(abilities=None):
        if not eval_sets:
            eval_sets.update(prepared.eval_sets())
        return run_evaluation(core, tokenizer, sweep.evaluate, eval_sets, template,
                              eval_id=Path(prepared.eval_path).stem,
                              cache_dir=Path(prepared.root) / "eval", rank=rank, world=world,
                              **({"abilities": abilities} if abilities else {}))

    def pruning_report(epoch: int) -> None:
        """The objective after an epoch of the final stage, for the sweep's pruner (forwarded to
        Tune by the trial's IntermediateReports callback); every rank reports, rank 0's counts."""
        from ..search.pruning import EPOCH, INTERMEDIATE

        objective = next(iter(sweep.search.objectives))
        evaluated = evaluate([objective])
        metrics = {INTERMEDIATE: 1, EPOCH: epoch}
        if evaluated is not None:
            metrics[objective] = evaluated[0][objective]
        ray.train.report(metrics, checkpoint=None)

    t_train = time.perf_counter()
    records = run_stages(model, core, stages, hp, tokenizer.pad_token_id, keys=keys, cache=cache,
                         rank=rank, world=world, device=device,
                         autocast_dtype=amp_dtype(tr.dtype, device),
                         on_stage_end=stage_checkpoint,
                         on_final_epoch_end=pruning_report if sweep.search.prune else None)
    train_s = time.perf_counter() - t_train
    summary = {"stages": records}

    metrics = {f"stage{i}_{k}": v for i, s in enumerate(records)
               for k, v in s.items() if k != "name"}
    trained = [s for s in records if not s["cached"]]
    metrics.update(train_loss=records[-1]["loss"] if records else float("nan"),
                   train_tokens=sum(s["tokens"] for s in records),
                   trained_tokens=sum(s["tokens"] for s in trained),
                   stages_from_cache=sum(s["cached"] for s in records),
                   param_delta_l2=_param_delta(core, initial), train_seconds=train_s,
                   setup_seconds=t_train - t_start)
    t_eval = time.perf_counter()
    evaluated = evaluate()
    if evaluated is None:  # not rank 0: its shard of the generations is already gathered
        ray.train.report(metrics, checkpoint=None)
        return
    scores, records_eval, cache_hit = evaluated
    metrics.update(scores)
    metrics["eval_seconds"] = time.perf_counter() - t_eval
    metrics["eval_cache_hit"] = int(cache_hit)
    metrics["general_scorer"] = records_eval["general_scorer"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        (out / "eval_records.json").write_text(json.dumps(records_eval))
        (out / "train_summary.json").write_text(json.dumps(summary))
        (out / "metrics.json").write_text(json.dumps(metrics))
        if tr.save_model:
            _save_model(core, tokenizer, out / "model")
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(str(out)))


def _save_model(core, tokenizer, path: Path) -> None:
    """A plain Hugging Face directory (`sftmix eval --model` loads it); LoRA adapters are merged
    into the base weights first, so the directory stands alone."""
    model = core.merge_and_unload() if hasattr(core, "merge_and_unload") else core
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
