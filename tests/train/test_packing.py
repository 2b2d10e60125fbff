"""Packing for GPU throughput: an optimizer step still takes batch_size × grad_accum × workers
samples (the study's global batch), one shape per micro-batch, every sample once per epoch, rows
within max_length, and no attention across samples (packed logits equal each sample's own)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

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


def _plans(lengths: np.ndarray, batch_size: int, max_length: int, world: int, packing: bool):
    """Every rank's micro-batch plan for one epoch, as train_stage draws it."""
    stage = StageData("s", [(np.zeros(int(n), np.int32), np.zeros(int(n), np.int32))
                            for n in lengths], 1)
    hp = TrainConfig(batch_size=batch_size, max_length=max_length, packing=packing)
    return [micro_batch_plan(stage, hp, np.random.default_rng(7), rank, world, packing)[0]
            for rank in range(world)]


def samples_per_step(plans, grad_accum: int) -> float:
    """Samples an optimizer step consumes on average: all ranks' samples over the steps."""
    def count(mb):
        return sum(len(r) for r in mb) if isinstance(mb, list) else len(mb)

    steps = -(-len(plans[0]) // grad_accum)
    return sum(count(mb) for plan in plans for mb in plan) / steps


def _study_lengths(n: int = 12_000) -> np.ndarray:
    """~200-token samples (log-normal, median 150, a tail to max_length): the study's math and
    code data after the Vicuna template."""
    lengths = np.random.default_rng(3).lognormal(np.log(150), 0.75, size=n)
    return np.clip(lengths.astype(int), 8, 2048)


def _lab_lengths(tmp_path) -> np.ndarray:
    """The lab's own samples as the GPU quickstart tokenizes them (its BPE, Vicuna template)."""
    from sftmix_ray.data.formats import to_messages
    from sftmix_ray.data.lab import lab_train
    from sftmix_ray.data.template import template_for
    from sftmix_ray.data.tokenize import tokenize_conversations
    from sftmix_ray.data.tokenizer import train_lab_tokenizer

    formats = {"math": "gsm8k", "code": "alpaca", "general": "sharegpt"}
    convs = [to_messages(r, formats[d]) for d in formats for r in lab_train(d, 400)]
    tok = train_lab_tokenizer([m["content"] for c in convs for m in c], 2048, tmp_path)
    domain, _ = tokenize_conversations(convs, tok, template_for("vicuna", tok), 512)
    return np.asarray(domain.lengths())


@pytest.mark.parametrize("packing", [True, False])
def test_the_study_step_takes_128_samples_packed_or_not(packing):
    # the _real sweeps: 4 per GPU × grad_accum 4 × 8 workers, max_length 2048
    lengths = _study_lengths()
    per_step = samples_per_step(_plans(lengths, 4, 2048, 8, packing), grad_accum=4)
    assert per_step == pytest.approx(128, rel=0.10), per_step
    print(f"study, packing={packing}: {per_step:.1f} samples per optimizer step (target 128)")


@pytest.mark.parametrize("packing", [True, False])
def test_the_lab_gpu_step_takes_its_batch_packed_or_not(tmp_path, packing):
    # sweeps/quickstart_gpu.yaml: batch 32 on one worker, max_length 512, no accumulation
    lengths = _lab_lengths(tmp_path)
    per_step = samples_per_step(_plans(lengths, 32, 512, 1, packing), grad_accum=1)
    assert per_step == pytest.approx(32, rel=0.10), per_step
    print(f"lab GPU, packing={packing}: {per_step:.1f} samples per optimizer step (target 32)")


def test_a_packed_micro_batch_has_one_shape_and_fewer_positions_than_padding():
    lengths = _study_lengths()
    plan = _plans(lengths, 4, 2048, 1, True)[0]
    rows = rows_per_batch(lengths, 4, 2048)
    assert rows == 1  # 4 samples of ~200 tokens share one row of 2048
    assert {len(mb) for mb in plan[:-1]} == {rows}  # one shape, the epoch's last step aside
    unpacked = _plans(lengths, 4, 2048, 1, False)[0]
    padded = sum(4 * max(int(lengths[i]) for i in mb) for mb in unpacked)
    assert len(plan) * rows * 2048 < 2.5 * padded  # the price of keeping the batch: stated


@settings(max_examples=150, deadline=None)
@given(lengths=st.lists(st.integers(1, 300), min_size=1, max_size=200),
       batch_size=st.integers(1, 12), capacity=st.integers(16, 256), world=st.integers(1, 4),
       epochs=st.integers(1, 2), seed=st.integers(0, 2 ** 16))
def test_every_sample_once_per_epoch_and_rows_within_capacity(lengths, batch_size, capacity,
                                                             world, epochs, seed):
    lengths = np.asarray(lengths)
    plans = [packed_plan(lengths, batch_size, capacity, epochs, np.random.default_rng(seed),
                         rank, world) for rank in range(world)]
    assert len({len(p) for p, _ in plans}) == 1  # every rank the same number of micro-batches
    ends = sorted(plans[0][1])
    assert [plans[0][1][e] for e in ends] == list(range(1, epochs + 1))
    starts = [0] + [e + 1 for e in ends[:-1]]
    for start, end in zip(starts, ends):
        seen = np.concatenate([row for p, _ in plans for mb in p[start:end + 1] for row in mb])
        assert sorted(seen.tolist()) == list(range(len(lengths)))  # each exactly once
        if len(lengths) >= world:  # no rank idles through a micro-batch of padding alone
            assert all(any(len(row) for row in mb) for p, _ in plans for mb in p[start:end + 1])
    for p, _ in plans:
        for mb in p:
            assert sum(len(row) for row in mb) <= max(batch_size, 1) + world
            for row in mb:
                assert len(row) == 1 or lengths[row].sum() <= capacity


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
