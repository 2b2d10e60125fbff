"""`sftmix validate`'s memory estimate: checked against measured peaks of the issue-17 1.09 B
Llama (H100, float32 weights + bf16 autocast, batch 16, transformers' loss); a sweep that cannot
fit the GPUs it asks for is refused (exit 2, naming the numbers and the change that fits) by
`validate`, `run` and `resume` before Ray starts; the sweep's compute and disk are estimated."""

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sftmix_ray.cli import app
from sftmix_ray.config import LoraConfig, TrainConfig
from sftmix_ray.config.memory import KNOWN_SHAPES, ModelShape, estimate

from ..conftest import ROOT

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
    assert ddp.total > 120 and fsdp.total < 60
    # gradients reduce once per step: between reductions each GPU accumulates a whole float32
    # gradient (27 GB for 7 B) beside its shard
    once = estimate(shape, real.model_copy(update={"parallel": "fsdp", "grad_accum": 1}))
    assert fsdp.gradients - once.gradients > 25


BIG_TINY = {"tiny": {"hidden_size": 2048, "intermediate_size": 5632, "layers": 20, "heads": 16,
                     "max_positions": 1024}, "lab_vocab_size": 32000}  # the 1.09 B shape
BIG_TRAIN = {"batch_size": 16, "max_length": 1024, "gpus_per_worker": 0.5, "chunked_loss": False}


def test_validate_refuses_a_sweep_that_cannot_fit_naming_the_change(write_sweep):
    runner = CliRunner()
    fits = runner.invoke(app, ["validate", str(write_sweep()), "--gpu-memory", "80"])
    assert fits.exit_code == 0 and "memory on a GPU" in fits.output
    assert "does not fit" not in fits.output
    big = write_sweep(model=BIG_TINY, train=BIG_TRAIN)
    refused = runner.invoke(app, ["validate", str(big), "--gpu-memory", "80"])
    assert refused.exit_code == 2, refused.output
    assert "does not fit" in refused.output and "GiB per GPU but gets 39.0 GiB" in refused.output
    assert "set train.gradient_checkpointing: true (~" in refused.output
    assert "train.skip_memory_check: true" in refused.output and "Traceback" not in refused.output


def test_the_override_launches_anyway_with_a_warning(write_sweep):
    big = write_sweep(model=BIG_TINY, train={**BIG_TRAIN, "skip_memory_check": True})
    out = CliRunner().invoke(app, ["validate", str(big), "--gpu-memory", "80"])
    assert out.exit_code == 0, out.output
    assert "warning" in out.output and "launching anyway" in out.output


def test_the_gpu_size_comes_from_the_config_where_no_gpu_is_seen(write_sweep):
    fits_80 = write_sweep(model=BIG_TINY, train={**BIG_TRAIN, "gpus_per_worker": 1})
    assert CliRunner().invoke(app, ["validate", str(fits_80)]).exit_code == 0
    at_40 = write_sweep(model=BIG_TINY, train={**BIG_TRAIN, "gpus_per_worker": 1,
                                               "gpu_memory_gib": 40})
    out = CliRunner().invoke(app, ["validate", str(at_40)])
    assert out.exit_code == 2 and "train.gpu_memory_gib" in out.output, out.output


def test_a_clusters_gpu_is_read_from_rays_accelerator_resources():
    from sftmix_ray.cli.preflight import cluster_gpu_gib

    # ray.cluster_resources() of a node of 8 H100s and one of A100 40 GB: the smaller counts
    assert cluster_gpu_gib({"CPU": 128.0, "GPU": 8.0, "accelerator_type:H100": 1.0}) == \
        (80.0, "the cluster's H100")
    assert cluster_gpu_gib({"accelerator_type:H100": 1.0, "accelerator_type:A100-40G": 1.0})[0] \
        == 40.0
    assert cluster_gpu_gib({"CPU": 8.0}) is None


@pytest.mark.parametrize("path", sorted((ROOT / "sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_sweep_fits_an_80_gib_gpu(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = CliRunner().invoke(app, ["validate", str(path), "--gpu-memory", "80"])
    assert out.exit_code == 0, out.output
    per_gpu = float(re.search(r"~([\d.]+) GiB per GPU", out.output).group(1))
    assert per_gpu < 79
    if path.stem.endswith("_real"):
        assert "FSDP × 8" in out.output
        assert all(w in out.output for w in ("host memory per node", "GPU-hours", "disk"))


def _real_without_fsdp(tmp_path) -> Path:
    data = yaml.safe_load((ROOT / "sweeps" / "rq4_strategies_real.yaml").read_text())
    data["train"]["parallel"] = "ddp"
    data["search"]["space"] = str(ROOT / data["search"]["space"])
    data["storage"] = str(tmp_path / "runs")
    data["tracking"]["uri"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    path = tmp_path / "rq4_ddp.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("command", ["validate", "run", "resume"])
def test_the_study_sweep_on_ddp_is_refused_before_ray_starts(tmp_path, command):
    import ray

    ray_before = ray.is_initialized()  # the test process shares one Ray session across tests
    out = CliRunner().invoke(app, [command, str(_real_without_fsdp(tmp_path))])
    assert out.exit_code == 2, out.output
    assert "~133.0 GiB per GPU but gets 79.0 GiB" in out.output
    assert "set train.parallel: fsdp (~46.4 GiB per GPU)" in out.output
    assert "Traceback" not in out.output
    assert ray.is_initialized() == ray_before  # Ray was not started for this sweep
    assert not (tmp_path / "runs").exists() and not (tmp_path / "mlflow.db").exists()


def test_a_run_that_cannot_fit_is_refused_before_anything_is_made(write_sweep, tmp_path):
    import ray

    ray_before = ray.is_initialized()
    big = write_sweep(model=BIG_TINY, train={**BIG_TRAIN, "gpus_per_worker": 1,
                                             "gpu_memory_gib": 24})
    out = CliRunner().invoke(app, ["run", str(big)])
    assert out.exit_code == 2 and "does not fit" in out.output, out.output
    assert ray.is_initialized() == ray_before
    assert not (tmp_path / "runs").exists() and not (tmp_path / "mlflow.db").exists()


def test_the_budget_counts_each_stages_tokens_and_the_reused_prefixes(write_sweep, tmp_path):
    from sftmix_ray.config import load_sweep
    from sftmix_ray.search.budget import sweep_budget

    space = {"domains": ["math", "code"], "specialized": ["math"],
             "counts": {"grid": [{"math": 100, "code": 50}]},
             "strategies": {"multi_task": {}, "mixed_sequential": {}, "dmt": {"k": [0.5]}}}
    path = write_sweep(space=space, domains={
        "math": {"source": "lab", "format": "gsm8k", "pool": 200, "mean_tokens": 10},
        "code": {"source": "lab", "format": "alpaca", "pool": 200, "mean_tokens": 20}},
        train={"epochs": 2, "batch_size": 8, "max_length": 160},
        search={"space": str(tmp_path / "space.yaml"), "algorithm": "grid", "num_samples": 1})
    sweep, sp = load_sweep(path)
    compute, disk = sweep_budget(sweep, sp)
    # multi-task (100·10 + 50·20)·2 = 4000; mixed sequential 100·10·2 + 50·20·2 = 4000;
    # DMT 100·10·2 + (50·20 + 50·10)·2 = 5000
    assert "3 trials, 0.013 M training tokens" in compute
    assert "1 prefix(es) a later trial reuses" in disk  # the math stage DMT and mixed share
