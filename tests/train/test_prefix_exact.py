"""The stage-prefix cache is exact with dropout drawing from torch's RNG (LoRA dropout on): a
stage resumed from a cached prefix ends with the weights of training straight through. And a
prefix trained on another device type or in another dtype has another key."""

from types import SimpleNamespace

import numpy as np
import torch

from sftmix_ray.config import LoraConfig, ModelConfig, TinyModelConfig, TrainConfig
from sftmix_ray.train.model import build_model
from sftmix_ray.train.prefix_cache import PrefixCache, prefix_keys
from sftmix_ray.train.rng import seed_stage, stage_seed
from sftmix_ray.train.worker import run_stages
from tests.train.test_loop import _stages

SPEC = ModelConfig(tiny=TinyModelConfig(hidden_size=32, intermediate_size=64, layers=1, heads=2,
                                        max_positions=64))
TOKENS = SimpleNamespace(bos_token_id=1, eos_token_id=2, pad_token_id=0)
TRAIN = TrainConfig(lr=1e-2, epochs=1, batch_size=4, max_length=32,
                    lora=LoraConfig(r=4, alpha=8, dropout=0.3, target_modules=["q_proj", "v_proj"]))


def _run(cache, keys):
    model = build_model(SPEC, 64, TOKENS, seed=0, train=TRAIN)
    records = run_stages(model, model, _stages(), TRAIN, 0, keys=keys, cache=cache, rank=0,
                         world=1, device=torch.device("cpu"), autocast_dtype=None)
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}, \
        records


def test_a_resumed_prefix_with_lora_dropout_continues_exactly(tmp_path):
    straight, _ = _run(None, [])
    cache = PrefixCache(tmp_path / "prefix")
    _, first = _run(cache, ["k"])
    torch.manual_seed(12345)  # whatever state the process is in, the stage reseeds
    np.random.seed(7)
    resumed, second = _run(cache, ["k"])
    assert [r["cached"] for r in first] == [0, 0] and [r["cached"] for r in second] == [1, 0]
    for n, value in straight.items():
        assert torch.equal(value, resumed[n]), n
    # dropout is really drawing: the same stage with another seed trains other weights
    other_train = TRAIN.model_copy(update={"seed": 1})
    other = build_model(SPEC, 64, TOKENS, seed=0, train=TRAIN)
    run_stages(other, other, _stages(), other_train, 0, keys=[], cache=None, rank=0, world=1,
               device=torch.device("cpu"), autocast_dtype=None)
    moved = {n for n, p in other.named_parameters() if p.requires_grad
             and not torch.equal(p, straight[n])}
    assert moved


def test_stage_seeds_differ_by_stage_and_rank_and_reach_every_generator():
    import random

    assert len({stage_seed(0, i, r) for i in range(3) for r in range(2)}) == 6
    seed_stage(0, 1)
    a = (torch.rand(1), np.random.rand(), random.random())
    torch.rand(5), np.random.rand(5), random.random()
    seed_stage(0, 1)
    assert (torch.rand(1), np.random.rand(), random.random()) == a


def test_the_key_names_the_device_and_dtype():
    manifest = {"seed": 0, "domains": {"math": {"key": "m"}},
                "stages": [{"epochs": 1, "steps": None,
                            "domains": {"math": {"samples": 4, "selection": "x"}}}, {}]}
    prepared = SimpleNamespace(tokenizer_dir="/c/tok-abc", template="vicuna")
    keys = {(device, dtype): prefix_keys(SPEC, TRAIN, prepared, manifest, device=device,
                                          dtype=dtype)[0]
            for device in ("cpu", "cuda") for dtype in (None, "bfloat16")}
    assert len(set(keys.values())) == 4
    # and options that do not change the weights do not change it
    same = TRAIN.model_copy(update={"expandable_segments": False, "cpus_per_worker": 3})
    assert prefix_keys(SPEC, same, prepared, manifest)[0] == keys[("cpu", None)]
