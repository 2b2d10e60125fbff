"""Training: stages resume exactly from the prefix cache, racing trials train a prefix once, LoRA
touches only adapters, and a NaN loss stops the trial with its reason."""

import multiprocessing as mp
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from sftmix_ray.config import LoraConfig, ModelConfig, TinyModelConfig, TrainConfig
from sftmix_ray.train.loop import StageData, train_stage
from sftmix_ray.train.model import build_model, trainable_state
from sftmix_ray.train.prefix_cache import PrefixCache
from sftmix_ray.train.worker import run_stages

VOCAB = 64
SPEC = ModelConfig(tiny=TinyModelConfig(hidden_size=32, intermediate_size=64, layers=1, heads=2,
                                        max_positions=64))
TOKENS = SimpleNamespace(bos_token_id=1, eos_token_id=2, pad_token_id=0)


def _hp(**kw) -> SimpleNamespace:
    return SimpleNamespace(**TrainConfig(lr=1e-2, epochs=1, batch_size=4, max_length=32,
                                         **kw).model_dump())


def _stages() -> list[StageData]:
    rng = np.random.default_rng(0)

    def samples(n, lo):
        out = []
        for _ in range(n):
            ids = rng.integers(lo, lo + 20, size=int(rng.integers(6, 16))).astype(np.int32)
            labels = ids.copy()
            labels[:3] = -100
            out.append((ids, labels))
        return out
    # DMT-shaped: stage 1 specialized data, stage 2 general data plus a replay
    spec, gen = samples(24, 3), samples(16, 30)
    return [StageData("specialized", spec, 1), StageData("general+k", gen + spec[:4], 1)]


def _model(train=None):
    return build_model(SPEC, VOCAB, TOKENS, seed=0, train=train)


def _run(cache, keys, hp=None):
    model = _model()
    records = run_stages(model, model, _stages(), hp or _hp(), 0, keys=keys, cache=cache, rank=0,
                         world=1, device=torch.device("cpu"), autocast_dtype=None)
    return model, records


def test_stage_two_resumes_exactly_from_the_cached_stage_one(tmp_path):
    plain, plain_records = _run(None, [])
    cache = PrefixCache(tmp_path / "prefix")
    first, first_records = _run(cache, ["k1"])
    second, second_records = _run(cache, ["k1"])
    assert [r["cached"] for r in first_records] == [0, 0]
    assert [r["cached"] for r in second_records] == [1, 0]  # stage 1 skipped: loaded
    assert second_records[0]["loss"] == first_records[0]["loss"]  # the record travels too
    for model in (first, second):
        for (n, a), b in zip(plain.state_dict().items(), model.state_dict().values()):
            assert torch.equal(a, b), n  # identical to training straight through
    # the checkpoint is stage 1's end: training only stage 1 from scratch reproduces it
    stage1 = _model()
    train_stage(stage1, _stages()[0], _hp(), 0, index=0)
    state, _ = cache.load("k1")
    for n, value in trainable_state(stage1).items():
        assert torch.equal(state[n], value), n
    # and stage 2 really started there: different from stage 2 trained on the initial weights
    fresh = _model()
    train_stage(fresh, _stages()[1], _hp(), 0, index=1)
    assert not torch.equal(fresh.lm_head.weight, first.lm_head.weight)


def _race(root: str, out) -> None:
    torch.set_num_threads(1)
    _, records = _run(PrefixCache(root, poll_s=0.05), ["shared"])
    out.put([r["cached"] for r in records])


def test_racing_trials_train_a_prefix_once(tmp_path):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(tmp_path / "prefix"), out)) for _ in range(2)]
    for p in procs:
        p.start()
    results = sorted(out.get(timeout=180) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert results == [[0, 0], [1, 0]]  # one trained the shared stage, the other waited for it
    leftovers = [p.name for p in (tmp_path / "prefix").iterdir() if p.name.startswith(".")]
    assert not leftovers  # no half-written checkpoint


def test_lora_trains_only_the_adapters():
    train = TrainConfig(lr=1e-2, epochs=1, batch_size=4, max_length=32,
                        lora=LoraConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj"]))
    model = _model(train)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train_stage(model, _stages()[0], SimpleNamespace(**train.model_dump()), 0, index=0)
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p)}
    assert changed and all("lora_" in n for n in changed)
    assert set(trainable_state(model)) == {n for n, p in model.named_parameters()
                                           if "lora_" in n}
    with pytest.raises(ValueError, match="no modules named \\['query'\\]"):
        _model(train.model_copy(update={"lora": LoraConfig(target_modules=["query"])}))


def test_gradient_accumulation_matches_the_step_count():
    model = _model()
    record = train_stage(model, _stages()[0], _hp(grad_accum=3), 0, index=0)
    assert record["steps"] == 2  # 24 samples / batch 4 = 6 micro-batches / 3


def test_a_nan_loss_stops_the_trial_with_its_reason():
    model = _model()
    with torch.no_grad():
        model.lm_head.weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="loss became nan at stage 'specialized' step 0"):
        train_stage(model, _stages()[0], _hp(), 0, index=0)


def test_packed_rows_keep_attention_within_each_sample():
    from sftmix_ray.train.loop import collate, collate_packed, pack_rows

    assert sorted(map(sorted, pack_rows([5, 3, 4, 2, 6], 8))) == [[0, 1], [2], [3, 4]]
    samples = _stages()[0].samples[:6]
    model = _model().eval()
    ids, labels, pos, n_real = collate_packed(samples, 0, 32)
    assert ids.shape[0] < len(samples) and n_real == sum(len(i) for i, _ in samples)
    with torch.no_grad():
        packed = model(input_ids=ids, position_ids=pos, use_cache=False).logits
        alone = [model(input_ids=torch.from_numpy(i.astype(np.int64))[None]).logits[0]
                 for i, _ in samples]
        # find each sample in its row by position-id restarts and compare its logits
        found = 0
        for r in range(ids.shape[0]):
            starts = (pos[r] == 0).nonzero().flatten().tolist()
            for a, b in zip(starts, starts[1:] + [ids.shape[1]]):
                for s, (s_ids, _) in enumerate(samples):
                    if b - a == len(s_ids) and torch.equal(ids[r, a:b],
                                                           torch.from_numpy(s_ids.astype(np.int64))):
                        assert torch.allclose(packed[r, a:b], alone[s], atol=1e-4)
                        found += 1
                        break
        assert found == len(samples)
        # the loss over a packed batch equals the padded batch's (first labels are prompt anyway)
        p_ids, p_labels, p_mask = collate(samples, 0)
        padded_loss = model(input_ids=p_ids, attention_mask=p_mask, labels=p_labels).loss
        packed_loss = model(input_ids=ids, position_ids=pos, labels=labels, use_cache=False).loss
        assert torch.allclose(padded_loss, packed_loss, atol=1e-5)


def test_packing_trains_on_rows_of_max_length():
    model = _model()
    stage = _stages()[0]
    record = train_stage(model, stage, _hp(packing=True), 0, index=0)
    unpacked = train_stage(_model(), stage, _hp(), 0, index=0)
    tokens = sum(len(i) for i, _ in stage.samples)
    # every token trained once; a packed micro-batch holds batch_size samples, as an unpacked
    # one does, so the stage takes the same number of optimizer steps (±10%)
    assert record["tokens"] == tokens
    assert abs(record["steps"] - unpacked["steps"]) <= max(1, 0.1 * unpacked["steps"])
    assert np.isfinite(record["loss"])


def test_a_stage_measured_in_steps_stops_there():
    stage = _stages()[0]
    capped = StageData(stage.name, stage.samples, 3, steps=4)
    assert train_stage(_model(), capped, _hp(), 0, index=0)["steps"] == 4


def test_gradient_checkpointing_changes_memory_not_results():
    plain, ckpt = _model(), _model(TrainConfig(gradient_checkpointing=True))
    assert ckpt.model.gradient_checkpointing and not plain.model.gradient_checkpointing
    for m, hp in ((plain, _hp()), (ckpt, _hp(gradient_checkpointing=True))):
        train_stage(m, _stages()[0], hp, 0, index=0)
    for (n, a), b in zip(plain.state_dict().items(), ckpt.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), n


def test_the_stage_schedule_and_why_it_is_not_transformers():
    import math

    import torch
    from transformers import get_cosine_schedule_with_warmup

    from sftmix_ray.train.loop import lr_at

    total, peak, ratio = 20, 1e-3, 0.1  # 2 warmup steps
    ours = [lr_at(s, total, peak, ratio) for s in range(total)]
    assert ours[:3] == [peak / 2, peak, peak]  # warmup ends at full lr, cosine starts there
    assert ours[-1] == pytest.approx(peak * 0.5 * (1 + math.cos(math.pi * 17 / 18)))
    assert all(a >= b for a, b in zip(ours[1:], ours[2:]))  # then only down
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=peak)
    sched = get_cosine_schedule_with_warmup(opt, num_warmup_steps=2, num_training_steps=total)
    theirs = []
    for _ in range(total):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    # transformers' warmup runs a step behind (its first step trains at lr 0); after the warmup
    # the two agree. Not the same schedule, so adopting it would change every trained weight.
    assert theirs[:2] == [0.0, peak / 2] and ours[:2] == [peak / 2, peak]
    assert theirs[2:] == pytest.approx(ours[2:])
