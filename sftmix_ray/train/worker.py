"""What each Ray Train worker runs for one trial: build the stages, train through all of them,
generate on every rank, score on rank 0, and report once with a checkpoint of the results."""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path

from ..data.mixture import select_indices
from ..data.prepare import PreparedData
from ..plan.strategies import Stage
from . import online_loop as online
from .job import JOB_KEY, TrainJob
from .loop import StageData, select, train_stage
from .reports import EPOCH, INTERMEDIATE


def _stage_data(prepared: PreparedData, stages: list[Stage], epochs: int, seed: int):
    cache, out = {}, []
    for st in stages:
        if st.online is not None:  # drawn while it trains, from each domain's whole pool
            out.append(online.online_stage_data(prepared, st, epochs, seed))
            continue
        samples = []
        for domain, count in st.counts.items():
            if domain not in cache:
                cache[domain] = prepared.tokenized(domain)
            td = cache[domain]
            samples.extend(select(td, select_indices(domain, len(td), count, seed)))
        out.append(StageData(st.name, samples, st.epochs or epochs, st.steps))
    return out


def _initial_weights(model, rank: int, sharded: bool) -> dict:
    """What `_param_delta` compares against, on the host: each rank's own shards under FSDP
    (1/world of the model each), the whole trainable weights on rank 0 alone under DDP."""
    from .parallel import local

    if not sharded and rank != 0:
        return {}
    return {n: local(p.detach()).to("cpu", copy=True) for n, p in model.named_parameters()
            if p.requires_grad}


def _param_delta(model, initial: dict, sharded: bool) -> float:
    """The L2 norm of what training changed, from each rank's shards (summed across ranks
    under FSDP: one all-reduce, on every rank) or from rank 0's replica."""
    import torch

    from .parallel import local

    with torch.no_grad():
        sq = sum(float(((local(p.detach()).cpu().float() - initial[n].float()) ** 2).sum())
                 for n, p in model.named_parameters() if n in initial)
    if sharded:
        import torch.distributed as dist

        total = torch.tensor(sq, dtype=torch.float64)
        dist.all_reduce(total)
        sq = float(total)
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
               on_final_epoch_end=None, speed=None, on_epoch_end=None) -> list[dict]:
    """Train the stages in order; a stage whose prefix is cached is skipped and its checkpoint
    loaded only when a later stage needs to train from it. Rank 0 takes the decisions (and the
    locks) and broadcasts them, so every rank skips and trains alike. `on_epoch_end()` follows
    every trained epoch of every stage (the held-out loss), on every rank."""
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
            record = cache.record(keys[j]) if rank == 0 else {}
            records.append({**_broadcast(record, rank, world), "cached": 1, "seconds": 0.0})
            continue
        if pending is not None:  # read on rank 0 alone, broadcast, sharded as the model is
            load_trainable_state(core, cache.load(pending)[0] if rank == 0 else {}, rank, world)
            pending = None
        try:
            final = j == len(stages) - 1
            hooks = [h for h in (on_epoch_end, on_final_epoch_end if final else None) if h]
            trainer = online.trainer_for(stage, train_stage)
            record = trainer(model, stage, hp, pad_id, index=j, rank=rank, world=world,
                                 device=device, autocast_dtype=autocast_dtype,
                                 on_epoch_end=(lambda e, hs=hooks: [h(e) for h in hs]) if hooks
                                 else None, speed=speed)
            if on_epoch_end is not None:  # train_stage calls it for every epoch but the last
                on_epoch_end(stage.epochs)
            if cache is not None and j < len(keys):  # rank 0 holds the lock: all ranks gather
                state = trainable_state(core, rank)
                if lock is not None:
                    cache.publish(keys[j], state, record)
                del state
        finally:
            if lock is not None:
                lock.release()
        records.append({**record, "cached": 0})
        if on_stage_end is not None and j < len(stages) - 1:
            on_stage_end(j, record)
    if pending is not None:
        load_trainable_state(core, cache.load(pending)[0] if rank == 0 else {}, rank, world)
    return records


class WorkerRun:
    """One worker's part of a trial, as named steps: `setup` (data, model, cache), `train` (every
    stage), `evaluate`, `report`. Rank 0 scores and reports the checkpoint; every rank reports, as
    Ray Train needs its workers in step."""

    def __init__(self, job: TrainJob):
        import ray.train
        import ray.train.torch
        import torch

        from .speed import set_allocator

        self.job, self.t_start = job, time.perf_counter()
        set_allocator(job.train.expandable_segments)  # before this worker's first CUDA allocation
        ctx = ray.train.get_context()
        self.rank, self.world = ctx.get_world_rank(), ctx.get_world_size()
        torch.set_num_threads(job.train.threads_per_worker
                              or max(1, int(job.train.cpus_per_worker)))
        self.device = ray.train.torch.get_device()
        self._eval_sets: dict = {}  # read once, on the first evaluation (pruning: every epoch)

    def setup(self) -> None:
        from ..data.template import template_for
        from ..data.tokenizer import load_tokenizer
        from .loop import amp_dtype
        from .model import build_model
        from .parallel import prepare
        from .prefix_cache import PrefixCache, lineage, prefix_keys
        from .speed import resolve_speed, train_module

        job, tr = self.job, self.job.train
        self.tokenizer = load_tokenizer(job.prepared.tokenizer_dir)
        self.template = template_for(job.model.template, self.tokenizer)
        self.stages = _stage_data(job.prepared, job.stages, tr.epochs, tr.seed)
        self.speed = online.online_speed(self.stages, resolve_speed(tr, self.device))
        self.autocast = amp_dtype(tr.dtype, self.device)
        model = build_model(job.model, len(self.tokenizer), self.tokenizer, tr.seed, tr,
                            base=job.base_model, checkpoint_dtype=True)
        online.reference_model(self.stages, model, self.device)  # doremi's, before wrapping
        # `core` is the language model (checkpoints, evaluation); `model` is what the loop
        # calls for a loss: core with the speed options, wrapped for DDP / FSDP.
        self.core = model
        self.sharded = tr.parallel == "fsdp"
        self.model = prepare(train_module(model, self.speed), model, tr.parallel, self.device,
                             mp_dtype=self.autocast if self.sharded else None)
        self.initial = _initial_weights(model, self.rank, self.sharded)
        where = {"device": self.device.type,
                 "dtype": str(self.autocast).removeprefix("torch.") if self.autocast else None,
                 "base_model": job.base_model}
        self.lineage = lineage(job.model, tr, job.prepared, job.manifest, **where)
        use_cache = tr.prefix_cache
        self.cache = PrefixCache(Path(job.prepared.root) / "prefix") if use_cache else None
        self.keys = prefix_keys(job.model, tr, job.prepared, job.manifest, **where) \
            if use_cache else []
        from .heldout import heldout_samples

        self.heldout = heldout_samples(job, self.tokenizer, self.template)
        self.heldout_history, self.heldout_last, self.heldout_seconds = {}, {}, 0.0

    def measure_heldout(self, _epoch=None) -> None:
        """`loss_<domain>` now: one point of each domain's metric history (step: trained
        epochs so far, from 1), every rank alike (heldout.py)."""
        from .heldout import heldout_metrics, heldout_pairs
        from .parallel import inference_weights
        from .speed import eager

        if not self.heldout:
            return
        t0 = time.perf_counter()
        with eager(self.core), inference_weights(self.model):
            pairs = heldout_pairs(self.core, self.heldout, self.tokenizer.pad_token_id,
                                  rank=self.rank, world=self.world, device=self.device,
                                  autocast_dtype=self.autocast)
        self.heldout_last = heldout_metrics(pairs)
        step = len(next(iter(self.heldout_history.values()), [])) + 1
        for d in self.heldout:
            if f"loss_{d}" in self.heldout_last:
                self.heldout_history.setdefault(f"loss_{d}", []).append(
                    [step, self.heldout_last[f"loss_{d}"]])
        self.heldout_seconds += time.perf_counter() - t0

    def train(self) -> dict:
        """Every stage; the training metrics of the whole trial."""
        t_train = time.perf_counter()
        records = run_stages(self.model, self.core, self.stages, self.job.train,
                             self.tokenizer.pad_token_id, keys=self.keys, cache=self.cache,
                             rank=self.rank, world=self.world, device=self.device,
                             autocast_dtype=self.autocast, speed=self.speed,
                             on_stage_end=self._stage_checkpoint,
                             on_final_epoch_end=self._pruning_report
                             if self.job.prune_objective else None,
                             on_epoch_end=self.measure_heldout if self.heldout else None)
        self.stage_records = records
        metrics = {f"stage{i}_{k}": v for i, s in enumerate(records)
                   for k, v in s.items() if k not in ("name", "online")}
        metrics.update(online.online_metrics(records))
        trained = [s for s in records if not s["cached"]]
        metrics.update(train_loss=records[-1]["loss"] if records else float("nan"),
                       train_tokens=sum(s["tokens"] for s in records),
                       trained_tokens=sum(s["tokens"] for s in trained),
                       stages_from_cache=sum(s["cached"] for s in records),
                       param_delta_l2=_param_delta(self.core, self.initial, self.sharded),
                       train_seconds=time.perf_counter() - t_train,
                       setup_seconds=t_train - self.t_start)
        if self.heldout and not self.heldout_history:  # every stage came from the cache
            self.measure_heldout()
        if self.heldout:  # the last measurement is the end's; the history goes to MLflow
            metrics.update(self.heldout_last, heldout_seconds=self.heldout_seconds,
                           heldout_history=json.dumps(self.heldout_history))
        return metrics

    def evaluate(self, abilities=None, point: str = "final"):
        """(scores, records, cache_hit) on rank 0; None on the others. The evaluation cache
        keys the weights by their lineage at `point`, not by hashing them."""
        from ..evaluate.suite import run_evaluation
        from .prefix_cache import trial_weights_id

        if not self._eval_sets:
            self._eval_sets.update(self.job.eval_sets.load())
        from .parallel import inference_weights
        from .speed import eager

        prepared = self.job.prepared
        with eager(self.core), inference_weights(self.model):
            return run_evaluation(self.core, self.tokenizer, self.job.evaluate, self._eval_sets,
                                  self.template, eval_id=self.job.eval_sets.key,
                                  cache_dir=Path(prepared.root) / "eval", rank=self.rank,
                                  world=self.world,
                                  weights_id=trial_weights_id(self.lineage, self.job.manifest,
                                                              point),
                                  **({"abilities": abilities} if abilities else {}))

    def report(self, metrics: dict, evaluated) -> None:
        """The final report: rank 0 attaches scores, records and (if kept) the model, whose
        weights every rank helps gather first."""
        import ray.train

        from .gather import gather_model

        kept = gather_model(self.core, self.rank, self.job.train.save_dtype) \
            if self.job.train.save_model else None
        if evaluated is None:  # not rank 0: its shard of the generations is already gathered
            ray.train.report(metrics, checkpoint=None)
            return
        scores, records_eval, cache_hit = evaluated
        metrics = {**metrics, **scores, "eval_cache_hit": int(cache_hit),
                   "general_scorer": records_eval.get("general_scorer", ""),
                   "eval_dtype": records_eval.get("generation_dtype", "float32")}
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            (out / "eval_records.json").write_text(json.dumps(records_eval))
            (out / "train_summary.json").write_text(json.dumps({"stages": self.stage_records}))
            (out / "metrics.json").write_text(json.dumps(metrics))
            if kept is not None:
                where = Path(self.job.model_dir) if self.job.model_dir else out / "model"
                _save_model(self.core, kept, self.tokenizer, where, self.job.train.save_dtype)
                del kept
                if self.job.model_dir:
                    metrics["model_path"] = self.job.model_dir
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(str(out)))

    def _stage_checkpoint(self, j: int, record: dict) -> None:
        """After a stage but the last: every rank reports the stage's metrics. No weights: the
        stage-prefix cache keeps a stage's weights where a later trial can reuse them, and a
        copy per trial in its Ray checkpoint (~25 GiB for a 7 B model) was never read."""
        import ray.train

        ray.train.report({f"stage{j}_{k}": v for k, v in record.items() if k != "name"},
                         checkpoint=None)

    def _pruning_report(self, epoch: int) -> None:
        """The objective after an epoch of the final stage, for the sweep's pruner (forwarded to
        Tune by the trial's IntermediateReports callback); every rank reports, rank 0's counts."""
        import ray.train

        objective = self.job.prune_objective
        evaluated = self.evaluate([objective], point=f"epoch {epoch}")
        metrics = {INTERMEDIATE: 1, EPOCH: epoch}
        if evaluated is not None:
            metrics[objective] = evaluated[0][objective]
        ray.train.report(metrics, checkpoint=None)


def train_worker(config: dict) -> None:
    """What each Ray Train worker runs for one trial."""
    run = WorkerRun(config[JOB_KEY])
    run.setup()
    metrics = run.train()
    t_eval = time.perf_counter()
    evaluated = run.evaluate()
    metrics["eval_seconds"] = time.perf_counter() - t_eval
    run.report(metrics, evaluated)


def _save_model(core, state: dict, tokenizer, path: Path, dtype: str) -> None:
    """A plain Hugging Face directory at `path` (`sftmix eval --model` loads it) from the
    gathered `state` (gather.gather_model); LoRA adapters are merged into the base weights, so it
    stands alone. The live model is not changed: it may still be sharded. Written beside `path`
    and renamed into place, so a reader never sees half a model; a trial run again (resume)
    replaces its earlier one."""
    import shutil

    from .gather import merged_lora_state
    from .speed import base_lm

    if hasattr(core, "get_base_model"):
        state = merged_lora_state(core, state)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    base_lm(core).save_pretrained(str(tmp), state_dict=state)
    # transformers writes the live model's dtype (float32) into config.json; name the kept
    # weights' instead, so a loader with dtype="auto" keeps them as they are
    config = json.loads((tmp / "config.json").read_text())
    (tmp / "config.json").write_text(json.dumps({**config, "dtype": dtype}, indent=2))
    tokenizer.save_pretrained(str(tmp))
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
