"""FSDP through torch's `fully_shard`, at world size 1 (one gloo process; on a GPU the same code
runs over NCCL): the same losses and weights as the unsharded model DDP replicates, with the
chunked loss wrapper as the root unit, and checkpoints gathered back to plain tensors."""

import multiprocessing as mp
from types import SimpleNamespace

import numpy as np
import torch

from sftmix_ray.config import ModelConfig, TinyModelConfig, TrainConfig

SPEC = ModelConfig(tiny=TinyModelConfig(hidden_size=32, intermediate_size=64, layers=2, heads=2,
                                        max_positions=64))
TOKENS = SimpleNamespace(bos_token_id=1, eos_token_id=2, pad_token_id=0)


def _compare(init_file: str, out) -> None:
    import torch.distributed as dist

    from sftmix_ray.train.loop import StageData, train_stage
    from sftmix_ray.train.model import build_model, trainable_state
    from sftmix_ray.train.parallel import shard
    from sftmix_ray.train.speed import resolve_speed, train_module

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=0, world_size=1)
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(32):
        ids = rng.integers(3, 60, size=int(rng.integers(6, 30))).astype(np.int32)
        samples.append((ids, ids.copy()))
    stage = StageData("s", samples, 2)
    hp = TrainConfig(lr=1e-2, epochs=2, batch_size=8, max_length=32, chunked_loss=True)
    speed = resolve_speed(hp, torch.device("cpu"))
    results = []
    for sharded in (False, True):
        model = build_model(SPEC, 64, TOKENS, 0)
        module = train_module(model, speed)
        if sharded:
            module = shard(module, model, torch.device("cpu"))
        record = train_stage(module, stage, hp, 0, index=0, speed=speed)
        results.append((record["loss"], trainable_state(model),
                        type(next(model.parameters())).__name__))
    dist.destroy_process_group()
    (plain_loss, plain, plain_type), (fsdp_loss, fsdp, fsdp_type) = results
    out.put({"losses": (plain_loss, fsdp_loss), "types": (plain_type, fsdp_type),
             "same": all(torch.allclose(plain[n], fsdp[n], atol=1e-6) for n in plain),
             "names": sorted(plain) == sorted(fsdp)})


def test_fully_shard_at_world_size_one_trains_like_the_plain_model(tmp_path):
    ctx = mp.get_context("spawn")  # a process group of its own, away from other tests
    out = ctx.Queue()
    proc = ctx.Process(target=_compare, args=(str(tmp_path / "pg"), out))
    proc.start()
    result = out.get(timeout=300)
    proc.join(timeout=60)
    assert result["types"] == ("Parameter", "DTensor")  # really sharded
    plain_loss, fsdp_loss = result["losses"]
    assert abs(plain_loss - fsdp_loss) < 1e-6 and result["same"] and result["names"]
