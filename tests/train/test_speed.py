"""GPU speed options: each defaults to on for CUDA and off on CPU; the chunked loss is
transformers' loss (values and gradients) without full-vocabulary float32 logits; compiling in
place keeps parameter names, and generation runs the layers eagerly."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from sftmix_ray.config import LoraConfig, ModelConfig, TinyModelConfig, TrainConfig
from sftmix_ray.train.loop import StageData, train_stage
from sftmix_ray.train.loss import ChunkedLossLM, chunked_causal_lm_loss
from sftmix_ray.train.model import build_model
from sftmix_ray.train.speed import eager, resolve_speed, train_module

SPEC = ModelConfig(tiny=TinyModelConfig(hidden_size=32, intermediate_size=64, layers=2, heads=2,
                                        max_positions=64))
TOKENS = SimpleNamespace(bos_token_id=1, eos_token_id=2, pad_token_id=0)


def test_defaults_are_on_for_cuda_and_off_on_cpu():
    hp = TrainConfig()
    cpu, gpu = resolve_speed(hp, torch.device("cpu")), resolve_speed(hp, torch.device("cuda"))
    assert not (cpu.packing or cpu.compile or cpu.fused or cpu.chunked_loss or cpu.attention)
    assert gpu.packing and gpu.compile and gpu.fused and gpu.chunked_loss
    assert gpu.attention in ("sdpa", "flash_attention_2")
    chosen = TrainConfig(packing=False, compile=False, attention="eager", chunked_loss=True)
    gpu = resolve_speed(chosen, torch.device("cuda"))
    assert (gpu.packing, gpu.compile, gpu.attention, gpu.chunked_loss) == (False, False, "eager",
                                                                          True)


@pytest.mark.parametrize("lora", [None, LoraConfig(r=4, dropout=0.0)])
def test_the_chunked_loss_is_transformers_loss(lora):
    model = build_model(SPEC, 64, TOKENS, 0, TrainConfig(lora=lora) if lora else None)
    ids = torch.randint(3, 60, (3, 21), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    labels[:, :5] = -100
    labels[2, 15:] = -100
    mask = torch.ones_like(ids)
    params = [p for p in model.parameters() if p.requires_grad]
    ref = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    ref_grads = torch.autograd.grad(ref, params)
    wrapped = ChunkedLossLM(model, chunk=8)  # chunks that straddle rows
    assert [n for n, _ in wrapped.named_parameters()] == \
        [f"lm.{n}" for n, _ in model.named_parameters()]
    loss = wrapped(input_ids=ids, attention_mask=mask, labels=labels).loss
    grads = torch.autograd.grad(loss, params)
    torch.testing.assert_close(loss, ref)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)


def test_chunks_hold_one_chunk_of_logits_at_a_time():
    """Under checkpointing no chunk's logits are saved for the backward pass: what autograd
    keeps is the hidden states, not tokens × vocabulary."""
    vocab, tokens, chunk = 5000, 64, 16
    head = torch.nn.Linear(8, vocab, bias=False)
    hidden = torch.randn(1, tokens, 8, requires_grad=True)
    labels = torch.randint(0, vocab, (1, tokens))
    saved = []

    def pack(t):
        saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = chunked_causal_lm_loss(hidden, head, labels, chunk=chunk)
    assert max(saved) < tokens * vocab / 4  # no full logits kept
    loss.backward()
    assert hidden.grad is not None and torch.isfinite(hidden.grad).all()


def test_chunked_loss_and_fused_adamw_train_like_the_defaults():
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(32):
        ids = rng.integers(3, 60, size=int(rng.integers(6, 30))).astype(np.int32)
        samples.append((ids, ids.copy()))
    stage = StageData("s", samples, 1)
    base = TrainConfig(lr=1e-2, epochs=1, batch_size=8, max_length=32)
    finals = []
    for options in ({}, {"chunked_loss": True, "fused_optimizer": True}):
        hp = base.model_copy(update=options)
        model = build_model(SPEC, 64, TOKENS, 0)
        speed = resolve_speed(hp, torch.device("cpu"))
        train_stage(train_module(model, speed), stage, hp, 0, index=0, speed=speed)
        finals.append(model.state_dict())
    for n, value in finals[0].items():
        torch.testing.assert_close(finals[1][n], value, atol=1e-5, rtol=1e-4)


def test_compiling_is_in_place_and_generation_runs_eagerly():
    model = build_model(SPEC, 64, TOKENS, 0)
    names = [n for n, _ in model.named_parameters()]
    speed = resolve_speed(TrainConfig(compile=True, attention="eager"), torch.device("cpu"))
    module = train_module(model, speed)
    assert module is model and [n for n, _ in model.named_parameters()] == names
    assert model.config._attn_implementation == "eager"
    layers = list(model.model.layers)
    assert all(layer._compiled_call_impl is not None for layer in layers)
    with eager(model):
        assert all(layer._compiled_call_impl is None for layer in layers)
    assert all(layer._compiled_call_impl is not None for layer in layers)
