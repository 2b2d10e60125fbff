"""A real lab sweep with FSDP over two Ray Train workers (gloo on CPU): every strategy's stages,
the stage-prefix cache written and read under sharding, the chunked loss as the root unit, an
evaluation whose problem counts split unevenly across the ranks, and the kept model gathered on
every rank and loaded by `sftmix eval --model`; then LoRA + gradient checkpointing under FSDP.
Each collective runs under a short timeout, so a rank that skips one fails the test by name
instead of hanging it."""

import json
import math
from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

from sftmix_ray.cli import app
from sftmix_ray.config import load_sweep
from sftmix_ray.search.tuner import run_sweep

pytestmark = pytest.mark.integration

SPACE = {"domains": ["math", "code", "general"], "specialized": ["math", "code"],
         "ratio": {"kind": "fixed", "fixed": {"math": 1, "code": 1, "general": 1}},
         "amount": {"choices": [60]},
         "strategies": {"multi_task": {}, "sequential": {"order": ["code", "math", "general"]},
                        "dmt": {"k": [1.0, 0.25]}}}
# 0.99 CPU a worker: two workers and the trial's driver (0.01) fit 2 cores
FSDP = {"lr": 3e-3, "epochs": 1, "batch_size": 4, "max_length": 160, "workers": 2,
        "cpus_per_worker": 0.99,
        "parallel": "fsdp", "chunked_loss": True, "save_model": True, "prefix_cache": True,
        "grad_accum": 2, "collective_timeout_s": 120}
# 5, 3 and 3 problems: two ranks get 3 and 2 prompts, so unequal numbers of generate calls
EVAL = {"batch_size": 1, "math": {"n": 5, "max_new_tokens": 12},
        "code": {"n": 3, "max_new_tokens": 12, "timeout_s": 3},
        "general": {"n": 3, "max_new_tokens": 6}}


def _children(outcome):
    mlflow.set_tracking_uri(outcome.tracking_uri)
    return mlflow.search_runs(search_all_experiments=True,
                              filter_string=f"tags.mlflow.parentRunId = '{outcome.parent_run_id}'")


def test_fsdp_sweep_runs_every_strategy_to_scores_and_a_loadable_model(write_sweep, tmp_path):
    sweep, space = load_sweep(write_sweep(space=SPACE, train=FSDP, evaluate=EVAL),
                              {"search.algorithm": "grid", "search.num_samples": 1})
    outcome = run_sweep(sweep, space)
    runs = _children(outcome)
    assert len(runs) == 4 and (runs["status"] == "FINISHED").all(), runs["status"].tolist()
    assert sorted(runs["params.strategy"]) == ["dmt", "dmt", "multi_task", "sequential"]
    for _, run in runs.iterrows():
        for ability in ("math", "code", "general"):
            assert 0.0 <= run[f"metrics.{ability}"] <= 1.0
            assert run[f"metrics.{ability}_ci_low"] <= run[f"metrics.{ability}"]
        assert math.isfinite(run["metrics.train_loss"]) and run["metrics.param_delta_l2"] > 0
        assert run["tags.sftmix.eval_dtype"] == "float32"  # what generation really ran in
        # written straight to the sweep's storage, not into the trial's Ray checkpoint
        kept = Path(run["tags.sftmix.model_path"])
        assert kept.parent.name == "models" and (kept / "model.safetensors").is_file()
    # DMT's stage 1 is the same for both k: trained by one trial, read by the other
    dmt = runs[runs["params.strategy"] == "dmt"]
    assert sorted(dmt["metrics.stages_from_cache"]) == [0, 1]
    # sequential's three stages each trained (its prefixes are its own), reported per stage
    seq = runs[runs["params.strategy"] == "sequential"].iloc[0]
    assert all(seq[f"metrics.stage{i}_tokens"] > 0 for i in range(3))

    model_dir = runs.iloc[0]["tags.sftmix.model_path"]
    config = json.loads((Path(model_dir) / "config.json").read_text())
    assert config["dtype"] == "bfloat16"  # the kept model, in bf16 unless asked otherwise
    scored = CliRunner().invoke(app, [
        "eval", "--model", model_dir, "--benchmarks", "lab_math,lab_code", "--n", "3",
        "--max-new-tokens", "8", "--out", str(tmp_path / "eval"),
        "--cache-dir", str(tmp_path / "eval-cache"),
        "--tracking-uri", f"sqlite:///{tmp_path / 'eval.db'}"])
    assert scored.exit_code == 0, scored.output
    scores = json.loads((tmp_path / "eval" / "scores.json").read_text())
    assert scores["math_n"] == 3 and 0.0 <= scores["code"] <= 1.0


def test_lora_with_checkpointing_under_fsdp_keeps_a_merged_model(write_sweep):
    space = {**SPACE, "strategies": {"multi_task": {}}}
    train = {**FSDP, "lora": {"r": 4, "alpha": 8, "dropout": 0.0,
                              "target_modules": ["q_proj", "v_proj"]},
             "gradient_checkpointing": True, "lr": 2e-2, "save_dtype": "float32"}
    sweep, sp = load_sweep(write_sweep(space=space, train=train, evaluate=EVAL, name="lora"),
                           {"search.algorithm": "grid", "search.num_samples": 1})
    run = _children(run_sweep(sweep, sp)).iloc[0]
    assert run["status"] == "FINISHED" and run["metrics.param_delta_l2"] > 0
    model_dir = Path(run["tags.sftmix.model_path"])
    from safetensors import safe_open

    with safe_open(str(model_dir / "model.safetensors"), "pt") as f:
        names = list(f.keys())
        assert str(f.get_tensor(names[0]).dtype) == "torch.float32"
    assert names and not [n for n in names if "lora" in n or "base_layer" in n]


def test_a_trial_larger_than_the_cluster_is_refused_not_left_waiting(write_sweep):
    """Three 1-CPU workers on a 2-CPU machine: Ray Train would retry starting them forever."""
    from sftmix_ray.config.load import ConfigError

    train = {**FSDP, "workers": 3, "cpus_per_worker": 1}
    sweep, sp = load_sweep(write_sweep(space={**SPACE, "strategies": {"multi_task": {}}},
                                       train=train, name="too-big"),
                           {"search.algorithm": "grid", "search.num_samples": 1})
    with pytest.raises(ConfigError, match=r"train\.workers × train\.cpus_per_worker: a trial "
                                          r"needs 3 CPUs .* lower train\.cpus_per_worker"):
        run_sweep(sweep, sp)
