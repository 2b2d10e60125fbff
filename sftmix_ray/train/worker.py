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
from .loop import StageData, select, train_stages


def _stage_data(prepared: PreparedData, stages: list[dict], epochs: int, seed: int):
    cache, out = {}, []
    for st in stages:
        samples = []
        for domain, count in st["counts"].items():
            if domain not in cache:
                cache[domain] = prepared.tokenized(domain)
            td = cache[domain]
            samples.extend(select(td, select_indices(domain, len(td), count, seed)))
        out.append(StageData(st["name"], samples, epochs))
    return out


def _param_delta(model, initial: dict) -> float:
    import torch

    with torch.no_grad():
        sq = sum(float(((p.detach() - initial[n]) ** 2).sum()) for n, p in model.named_parameters())
    return math.sqrt(sq)


def train_worker(cfg: dict) -> None:
    import ray.train
    import torch

    from ..data.template import template_for
    from ..data.tokenizer import load_tokenizer
    from ..evaluate.suite import run_evaluation
    from .model import build_model

    t_start = time.perf_counter()
    sweep = SweepConfig.model_validate(cfg["sweep"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    threads = sweep.train.threads_per_worker or max(1, int(sweep.train.cpus_per_worker))
    torch.set_num_threads(threads)

    prepared = PreparedData(**cfg["prepared"])
    tokenizer = load_tokenizer(prepared.tokenizer_dir)
    stages = _stage_data(prepared, cfg["stages"], sweep.train.epochs, sweep.train.seed)
    model = build_model(ModelConfig.model_validate(cfg["sweep"]["model"]), len(tokenizer),
                        tokenizer, sweep.train.seed)
    initial = {n: p.detach().clone() for n, p in model.named_parameters()}
    if world > 1:
        model = ray.train.torch.prepare_model(model)
    hp = SimpleNamespace(**sweep.train.model_dump())
    t_train = time.perf_counter()
    summary = train_stages(model, stages, hp, tokenizer.pad_token_id, rank=rank, world=world)
    train_s = time.perf_counter() - t_train
    core = model.module if hasattr(model, "module") else model

    metrics = {f"stage{i}_{k}": v for i, s in enumerate(summary["stages"])
               for k, v in s.items() if k != "name"}
    metrics.update(train_loss=summary["stages"][-1]["loss"] if summary["stages"] else float("nan"),
                   train_tokens=sum(s["tokens"] for s in summary["stages"]),
                   param_delta_l2=_param_delta(core, initial), train_seconds=train_s,
                   setup_seconds=t_train - t_start)
    t_eval = time.perf_counter()
    template = template_for(sweep.model.template, tokenizer)
    evaluated = run_evaluation(core, tokenizer, sweep.evaluate, prepared.eval_sets(), template,
                               eval_id=Path(prepared.eval_path).stem,
                               cache_dir=Path(prepared.root) / "eval", rank=rank, world=world)
    if evaluated is None:  # not rank 0: its shard of the generations is already gathered
        ray.train.report(metrics, checkpoint=None)
        return
    scores, records, cache_hit = evaluated
    metrics.update(scores)
    metrics["eval_seconds"] = time.perf_counter() - t_eval
    metrics["eval_cache_hit"] = int(cache_hit)
    metrics["general_scorer"] = records["general_scorer"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        (out / "eval_records.json").write_text(json.dumps(records))
        (out / "train_summary.json").write_text(json.dumps(summary))
        (out / "metrics.json").write_text(json.dumps(metrics))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(str(out)))
