"""`sftmix validate`'s memory estimate: checked against measured peaks of the issue-17 1.09 B
Llama (H100, float32 weights + bf16 autocast, batch 16, transformers' loss), and it warns,
naming the numbers, when a sweep cannot fit the GPUs it asks for."""

import pytest
from typer.testing import CliRunner

from sftmix_ray.cli import app
from sftmix_ray.config import LoraConfig, TrainConfig
from sftmix_ray.config.memory import KNOWN_SHAPES, ModelShape, estimate

LLAMA_1B = ModelShape(hidden=2048, layers=20, heads=16, kv_heads=16, intermediate=5632,
                      vocab=32000, tied=True)


def test_the_1b_shape_has_its_parameter_count():
    assert LLAMA_1B.params == pytest.approx(1.09e9, rel=0.01)
    assert KNOWN_SHAPES["huggyllama/llama-7b"].params == pytest.approx(6.74e9, rel=0.01)


@pytest.mark.parametrize("max_length, measured_gib", [
    (1023, 57.7),  # sftmix length-grouped: the widest batches are 16 × 1023
    (1024, 61.5),  # stock transformers, full rows of 1024
])
def test_the_estimate_matches_measured_peaks(max_length, measured_gib):
    est = estimate(LLAMA_1B, TrainConfig(batch_size=16, max_length=max_length),
                   chunked_loss=False)
    assert est.total == pytest.approx(measured_gib, rel=0.10)


def test_what_each_option_saves():
    base = TrainConfig(batch_size=16, max_length=1024)
    full = estimate(LLAMA_1B, base, chunked_loss=False)
    assert estimate(LLAMA_1B, base, chunked_loss=True).loss < full.loss / 3
    ckpt = estimate(LLAMA_1B, base.model_copy(update={"gradient_checkpointing": True}))
    assert ckpt.activations < full.activations / 5
    lora = estimate(LLAMA_1B, base.model_copy(update={"lora": LoraConfig()}))
    assert lora.optimizer < full.optimizer / 100 and lora.weights == full.weights


def test_the_study_7b_at_8_workers_needs_fsdp():
    real = TrainConfig(batch_size=4, grad_accum=4, max_length=2048, dtype="bfloat16",
                       gradient_checkpointing=True, workers=8, gpus_per_worker=1)
    shape = KNOWN_SHAPES["huggyllama/llama-7b"]
    ddp = estimate(shape, real)
    fsdp = estimate(shape, real.model_copy(update={"parallel": "fsdp"}))
    # float32 weights, gradients (+ DDP buckets) and AdamW state: 16-20 bytes a parameter
    assert ddp.total > 120 and fsdp.total < 30


def test_validate_warns_naming_the_numbers(write_sweep):
    runner = CliRunner()
    fits = runner.invoke(app, ["validate", str(write_sweep()), "--gpu-memory", "80"])
    assert fits.exit_code == 0 and "memory on a GPU" in fits.output
    assert "warning" not in fits.output
    big = write_sweep(model={"tiny": {"hidden_size": 2048, "intermediate_size": 5632,
                                      "layers": 20, "heads": 16, "max_positions": 1024},
                             "lab_vocab_size": 32000},
                      train={"batch_size": 16, "max_length": 1024, "gpus_per_worker": 0.5,
                             "chunked_loss": False})
    warned = runner.invoke(app, ["validate", str(big), "--gpu-memory", "80"])
    assert warned.exit_code == 0, warned.output
    assert "warning" in warned.output and "GiB per GPU but gets 39.0 GiB" in warned.output
    assert "gradient_checkpointing" in warned.output
