"""FSDP across two gloo processes on CPU, step by step through what a trial does with its model:
train (chunked loss as the root unit, gradient sync once per step), generate with a prompt count
that splits unevenly (ranks run different numbers of `generate` calls), gather the trainable
state and the kept model on every rank, load a prefix-cache state back into a fresh sharded
model, and LoRA + gradient checkpointing under FSDP. World size 1 hides every one of these
collectives; each test here would hang or abort if a rank skipped one (the process group's
timeout turns a hang into a failure)."""

import datetime
import os
import traceback
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from sftmix_ray.config import LoraConfig, ModelConfig, TinyModelConfig, TrainConfig
from tests.train.ranks import run_ranks

SPEC = ModelConfig(tiny=TinyModelConfig(hidden_size=32, intermediate_size=64, layers=2, heads=2,
                                        max_positions=128))
TOKENS = SimpleNamespace(bos_token_id=1, eos_token_id=2, pad_token_id=0)
WORLD = 2


class _Tok:
    """Enough of a tokenizer for `generate`: ids are the characters' codes mod 60, offset."""
    bos_token_id, eos_token_id, pad_token_id = 1, 2, 0

    def __call__(self, texts, add_special_tokens=False):
        return {"input_ids": [[3 + ord(c) % 57 for c in t] for t in texts]}

    def batch_decode(self, rows, skip_special_tokens=True):
        return [" ".join(str(int(i)) for i in r if int(i) > 2) for r in rows]


def _samples(n=48, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        ids = rng.integers(3, 60, size=int(rng.integers(6, 30))).astype(np.int32)
        out.append((ids, ids.copy()))
    return out


def _hp(**kw):
    base = dict(lr=1e-2, epochs=2, batch_size=4, max_length=64, chunked_loss=True, grad_accum=2,
                seed=0)
    return TrainConfig(**{**base, **kw})


def _train(parallel: str, rank: int, hp, tmp: str) -> dict:
    """One trial's model path at this rank: build, prepare, train, evaluate, gather."""
    from sftmix_ray.evaluate.generate import Sampling, generate_sharded
    from sftmix_ray.evaluate.precision import generation_dtype, generation_model
    from sftmix_ray.train.gather import gather_model
    from sftmix_ray.train.loop import StageData, train_stage
    from sftmix_ray.train.model import build_model, load_trainable_state, trainable_state
    from sftmix_ray.train.parallel import inference_weights, is_sharded, prepare
    from sftmix_ray.train.speed import resolve_speed, train_module

    device = torch.device("cpu")
    speed = resolve_speed(hp, device)
    core = build_model(SPEC, 64, TOKENS, 0, hp)
    model = _prepare_plain(train_module(core, speed), core, parallel, device) \
        if parallel == "ddp" else prepare(train_module(core, speed), core, "fsdp", device)
    record = train_stage(model, StageData("s", _samples(), hp.epochs), hp, 0, index=0,
                         rank=rank, world=WORLD, device=device, speed=speed)
    prompts = [f"q{i}" * (1 + i % 4) for i in range(7)]  # 7 prompts: 4 on rank 0, 3 on rank 1
    with inference_weights(model):
        dtype = generation_dtype("auto", core)
        with generation_model(core, dtype) as gen:
            texts = generate_sharded(gen, _Tok(), prompts, Sampling(max_new_tokens=6),
                                     batch_size=1, prepend_bos=True, rank=rank, world=WORLD)
    state = trainable_state(core, rank)
    kept = gather_model(core, rank, "float32")
    out = {"loss": record["loss"], "steps": record["steps"], "texts": texts,
           "sharded": is_sharded(model), "state": {n: t.numpy() for n, t in state.items()},
           "kept": sorted(kept)}
    # the prefix cache's load: rank 0's file, broadcast into a fresh (sharded) model
    fresh = build_model(SPEC, 64, TOKENS, 1, hp)
    fresh_model = train_module(fresh, speed)
    if parallel == "fsdp":
        prepare(fresh_model, fresh, "fsdp", device)
    load_trainable_state(fresh, state if rank == 0 else {}, rank, WORLD)
    reloaded = trainable_state(fresh, rank)
    out["reload_same"] = rank != 0 or all(torch.equal(reloaded[n], state[n]) for n in state)
    if parallel == "fsdp":
        # generation in bf16 on the unsharded weights (a swapped copy), then training goes on
        with inference_weights(model), generation_model(core, "bfloat16") as gen:
            out["bf16_dtype"] = str(next(gen.parameters()).dtype)
            out["bf16_texts"] = generate_sharded(gen, _Tok(), prompts, Sampling(max_new_tokens=4),
                                                 batch_size=2, prepend_bos=True, rank=rank,
                                                 world=WORLD)
        out["after_eval_loss"] = train_stage(model, StageData("t", _samples(16, 1), 1), hp, 0,
                                             index=1, rank=rank, world=WORLD, device=device,
                                             speed=speed)["loss"]
    return out


def _prepare_plain(module, core, parallel, device):
    """DDP as Ray Train's prepare_model makes it, without Ray: torch's DDP on gloo."""
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module.to(device))


def _lora(rank: int, tmp: str) -> dict:
    from sftmix_ray.train.gather import gather_model, merged_lora_state
    from sftmix_ray.train.loop import StageData, train_stage
    from sftmix_ray.train.model import build_model
    from sftmix_ray.train.parallel import inference_weights, prepare
    from sftmix_ray.train.speed import resolve_speed, train_module

    hp = _hp(lora=LoraConfig(r=4, alpha=8, dropout=0.0), gradient_checkpointing=True, lr=5e-2)
    device = torch.device("cpu")
    speed = resolve_speed(hp, device)
    core = build_model(SPEC, 64, TOKENS, 0, hp)
    model = prepare(train_module(core, speed), core, "fsdp", device)
    train_stage(model, StageData("s", _samples(), 1), hp, 0, index=0, rank=rank, world=WORLD,
                device=device, speed=speed)
    ids = torch.tensor([[1, 5, 9, 11, 3]])
    with inference_weights(model), torch.no_grad():
        logits = core(input_ids=ids).logits
    kept = gather_model(core, rank, "float32")
    if rank != 0:
        return {}
    merged = merged_lora_state(core, kept)
    plain = build_model(SPEC, 64, TOKENS, 0)
    plain.load_state_dict(merged, strict=False)
    with torch.no_grad():
        plain_logits = plain(input_ids=ids).logits
    return {"diff": float((logits - plain_logits).abs().max()),
            "lora_left": [k for k in merged if "lora" in k]}


HANG_TIMEOUT_S = 4


def _skipped_gather(rank: int) -> dict:
    """The shape of the bug the gathers fixed: rank 0 gathers a sharded weight alone while rank 1
    is elsewhere (alive, not in the collective). The process group's timeout ends it."""
    import time

    from sftmix_ray.train.model import build_model
    from sftmix_ray.train.parallel import full, prepare

    core = build_model(SPEC, 64, TOKENS, 0, _hp())
    prepare(core, core, "fsdp", torch.device("cpu"))
    if rank != 0:
        time.sleep(HANG_TIMEOUT_S * 3)  # rank 0's wait must end by its timeout, not by this
        return {}
    start = time.monotonic()
    try:
        full(core.get_input_embeddings().weight)
    except Exception as exc:  # gloo's timeout: a named failure instead of a hang
        return {"error_type": type(exc).__name__, "message": str(exc)[:300],
                "waited_s": time.monotonic() - start}
    return {"waited_s": time.monotonic() - start}


def _worker(rank: int, port: int, tmp: str, job: str, out) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD, timeout=datetime.timedelta(
        seconds=HANG_TIMEOUT_S if job == "hang" else 120))
    try:
        if job == "lora":
            result = _lora(rank, tmp)
        elif job == "hang":
            result = _skipped_gather(rank)
        else:
            result = {p: _train(p, rank, _hp(), tmp) for p in ("ddp", "fsdp")}
        out.put((rank, result))
    except Exception:  # the parent reads the failure instead of waiting for the timeout
        out.put((rank, {"error": traceback.format_exc()}))
    finally:
        dist.destroy_process_group()


def _run(job: str, tmp) -> dict:
    results = run_ranks(_worker, WORLD, str(tmp), job)
    return results


def test_fsdp_at_world_size_two_trains_evaluates_and_gathers_like_ddp(tmp_path):
    results = _run("train", tmp_path)
    ddp, fsdp = results[0]["ddp"], results[0]["fsdp"]
    assert fsdp["sharded"] and not ddp["sharded"]
    assert fsdp["steps"] == ddp["steps"] > 0
    # the same micro-batches, one gradient reduction per step: the same training to rounding
    assert abs(ddp["loss"] - fsdp["loss"]) < 1e-5
    for name, value in ddp["state"].items():
        assert np.allclose(value, fsdp["state"][name], atol=1e-5), name
    # every prompt answered, the same answers on both ranks and from both parallelisms
    assert results[1]["fsdp"]["texts"] == fsdp["texts"] == ddp["texts"]
    assert all(len(t) == 1 for t in fsdp["texts"])
    # gathers hand rank 0 everything and the other ranks nothing
    assert results[1]["fsdp"]["state"] == {} and results[1]["fsdp"]["kept"] == []
    assert "lm_head.weight" not in fsdp["kept"]  # tied: gathered once, as embed_tokens
    assert fsdp["reload_same"] and ddp["reload_same"]
    assert fsdp["bf16_dtype"] == "torch.bfloat16" and len(fsdp["bf16_texts"]) == 7
    # training goes on after evaluation, on the resharded weights
    assert all(np.isfinite(results[r]["fsdp"]["after_eval_loss"]) for r in results)


@pytest.mark.parametrize("job", ["lora"])
def test_lora_with_gradient_checkpointing_under_fsdp_merges_into_a_plain_model(tmp_path, job):
    result = _run(job, tmp_path)[0]
    assert result["lora_left"] == []
    # the merged plain model computes what the sharded LoRA model computed
    assert result["diff"] < 1e-4


def test_a_collective_one_rank_skips_fails_by_the_timeout_instead_of_hanging(tmp_path):
    """What train.collective_timeout_s (Ray's TorchConfig timeout) buys: a rank-0-only gather,
    the hang this module's tests guard against, ends as a named error after the timeout."""
    result = _run("hang", tmp_path)[0]
    assert "message" in result, result  # the gather did not complete: it failed
    assert "timed out" in result["message"].lower() or "timeout" in result["message"].lower()
    assert HANG_TIMEOUT_S - 1 <= result["waited_s"] < HANG_TIMEOUT_S * 3
