"""Packing for GPU throughput: rows filled to max_length, one shape per micro-batch, every sample
once per epoch, and no attention across samples (packed logits equal each sample's own)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from sftmix_ray.config import ModelConfig, TinyModelConfig, TrainConfig
from sftmix_ray.train.loop import StageData, micro_batch_plan, model_inputs, train_stage
from sftmix_ray.train.model import build_model
from sftmix_ray.train.packing import packed_plan, rows_per_batch

SPEC = ModelConfig(tiny=TinyModelConfig(hidden_size=32, intermediate_size=64, layers=2, heads=2,
                                        max_positions=128))
TOKENS = SimpleNamespace(bos_token_id=1, eos_token_id=2, pad_token_id=0)


def _samples(n: int, lo: int = 4, hi: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        ids = rng.integers(3, 60, size=int(rng.integers(lo, hi))).astype(np.int32)
        labels = ids.copy()
        labels[:2] = -100
        out.append((ids, labels))
    return out


def test_rows_are_filled_to_max_length_and_every_sample_is_seen_once():
    lengths = np.random.default_rng(1).integers(8, 120, size=2000)
    capacity, batch = 128, 16
    plan, ends = packed_plan(lengths, batch, capacity, epochs=2, rng=np.random.default_rng(0),
                             rank=0, world=1)
    per = rows_per_batch(lengths, batch, capacity)
    assert per == round(batch * lengths.mean() / capacity)  # about batch_size samples' tokens
    assert {len(mb) for mb in plan} == {per}  # one shape for every micro-batch
    epoch_one = plan[:min(ends) + 1]
    seen = np.concatenate([row for mb in epoch_one for row in mb])
    assert sorted(seen) == list(range(len(lengths)))  # each sample exactly once per epoch
    used = [int(lengths[row].sum()) for mb in plan for row in mb if len(row)]
    assert max(used) <= capacity
    rows = sum(len(mb) for mb in plan)
    padding = 1 - lengths.sum() * 2 / (rows * capacity)
    assert padding < 0.03, padding  # filled rows, not rows as wide as the batch's longest sample


def test_ranks_get_disjoint_rows_of_the_same_count():
    lengths = np.random.default_rng(2).integers(8, 120, size=301)
    plans = [packed_plan(lengths, 8, 128, 1, np.random.default_rng(5), rank, 2)[0]
             for rank in (0, 1)]
    assert len(plans[0]) == len(plans[1])  # DDP: every rank takes the same number of steps
    assert all(len(a) == len(b) for a, b in zip(*plans))
    ids = [np.concatenate([r for mb in p for r in mb]) for p in plans]
    assert not set(ids[0]) & set(ids[1])
    assert len(ids[0]) + len(ids[1]) == len(lengths)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_logits_equal_each_sample_alone(attention):
    samples = _samples(24)
    hp = TrainConfig(batch_size=8, max_length=96, packing=True)
    stage = StageData("s", samples, 1)
    plan, _ = micro_batch_plan(stage, hp, np.random.default_rng(0), 0, 1, packing=True)
    model = build_model(SPEC, 64, TOKENS, 0).eval()
    model.set_attn_implementation(attention)
    checked = 0
    with torch.no_grad():
        for batch in plan:
            inputs, n_real = model_inputs(stage, batch, 0, True, hp.max_length,
                                          torch.device("cpu"))
            assert inputs["input_ids"].shape == (len(batch), hp.max_length)
            assert n_real == sum(len(samples[j][0]) for row in batch for j in row)
            packed = model(input_ids=inputs["input_ids"], position_ids=inputs["position_ids"],
                           use_cache=False).logits
            for r, row in enumerate(batch):
                at = 0
                for j in row:
                    ids = torch.from_numpy(samples[j][0].astype(np.int64))
                    alone = model(input_ids=ids[None]).logits[0]
                    assert torch.equal(inputs["input_ids"][r, at:at + len(ids)], ids)
                    torch.testing.assert_close(packed[r, at:at + len(ids)], alone, atol=1e-5,
                                               rtol=1e-4)
                    at += len(ids)
                    checked += 1
    assert checked == len(samples)


def test_packed_training_trains_about_as_many_steps_as_unpacked():
    samples = _samples(96)
    stage = StageData("s", samples, 1)
    hp = SimpleNamespace(**TrainConfig(lr=1e-2, epochs=1, batch_size=8, max_length=96).model_dump())
    packed_hp = SimpleNamespace(**{**vars(hp), "packing": True})
    plain, packed = build_model(SPEC, 64, TOKENS, 0), build_model(SPEC, 64, TOKENS, 0)
    before = packed.lm_head.weight.detach().clone()
    r_plain = train_stage(plain, stage, hp, 0, index=0)
    r_packed = train_stage(packed, stage, packed_hp, 0, index=0)
    assert r_packed["tokens"] == r_plain["tokens"] == sum(len(i) for i, _ in samples)
    assert abs(r_packed["steps"] - r_plain["steps"]) <= 2 and np.isfinite(r_packed["loss"])
    assert not torch.equal(before, packed.lm_head.weight)
