"""Command-line overrides are merged into the sweep before it is validated: a bad override exits 2
naming the field, before anything starts (no Ray, no storage, no MLflow record)."""

import pytest
from typer.testing import CliRunner

from sftmix_ray.cli import app
from sftmix_ray.config import ConfigError, load_sweep


@pytest.mark.parametrize("args,field,problem", [
    (["--num-samples", "0"], "search.num_samples", "greater than 0"),
    (["--max-concurrent", "-3"], "search.max_concurrent", "greater than 0"),
    (["--storage", "s3://bucket/runs"], "cache_dir", "is a URI"),
])
def test_a_bad_override_exits_2_naming_the_field_and_starts_nothing(write_sweep, tmp_path, args,
                                                                     field, problem):
    import ray

    path = write_sweep()
    ray_before = ray.is_initialized()  # the test process shares one Ray session across tests
    out = CliRunner().invoke(app, ["run", str(path), *args])
    assert out.exit_code == 2, out.output
    assert f"{field}: " in out.output and problem in out.output
    assert "Traceback" not in out.output
    assert ray.is_initialized() == ray_before  # Ray was not started for this sweep
    assert not (tmp_path / "runs").exists() and not (tmp_path / "mlflow.db").exists()


def test_overrides_are_named_as_such_and_reported_with_the_files_problems(write_sweep):
    path = write_sweep(train={"lr": -1.0, "epochs": 1, "batch_size": 8, "max_length": 160})
    with pytest.raises(ConfigError) as exc:
        load_sweep(path, {"search.num_samples": 0, "search.max_concurrent": None})
    problems = exc.value.problems
    assert any(p.startswith("search.num_samples:") and "(set on the command line)" in p
               for p in problems)
    assert any(p.startswith("train.lr:") and "command line" not in p for p in problems)
    assert not any(p.startswith("search.max_concurrent") for p in problems)  # None: not given


def test_good_overrides_replace_the_files_values(write_sweep, tmp_path):
    sweep, _ = load_sweep(write_sweep(), {"search.num_samples": 5, "search.max_concurrent": 2,
                                          "storage": str(tmp_path / "elsewhere"),
                                          "tracking.uri": "sqlite:///other.db"})
    assert (sweep.search.num_samples, sweep.search.max_concurrent) == (5, 2)
    assert sweep.storage == str(tmp_path / "elsewhere")
    assert sweep.tracking.uri == "sqlite:///other.db"


def test_resume_overrides_are_validated_too(write_sweep):
    out = CliRunner().invoke(app, ["resume", str(write_sweep()), "--storage", "s3://b/runs"])
    assert out.exit_code == 2 and "cache_dir: " in out.output


def test_lab_pretrain_builds_the_base_once_then_reads_it_from_the_cache(write_sweep, tmp_path):
    path = write_sweep()
    first = CliRunner().invoke(app, ["lab", "pretrain", str(path)])
    assert first.exit_code == 0, first.output
    assert "built lab base model" in first.output and "documents" in first.output
    again = CliRunner().invoke(app, ["lab", "pretrain", str(path)])
    assert again.exit_code == 0 and "cached lab base model" in again.output
    assert len(list((tmp_path / "runs" / "cache").glob("lab-base-*/model.safetensors"))) == 1
    model = {"tiny": {"hidden_size": 32, "intermediate_size": 64, "layers": 1, "heads": 2,
                      "pretrain": None}, "lab_vocab_size": 400}
    none = CliRunner().invoke(app, ["lab", "pretrain", str(write_sweep(model=model))])
    assert none.exit_code == 2 and "no lab base model to build" in none.output


def test_a_hub_model_that_cannot_be_reached_is_exit_2_saying_what_to_set(tmp_path, monkeypatch):
    """The study's sweep as shipped (it fits), on a machine with neither the model in its cache
    nor a reachable hub: a clear refusal before data, Ray or records, not an OSError traceback."""
    import ray
    import yaml
    from huggingface_hub import constants

    from .conftest import ROOT

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # as HF_HUB_OFFLINE=1 sets it
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    data = yaml.safe_load((ROOT / "sweeps" / "rq4_strategies_real.yaml").read_text())
    data["search"]["space"] = str(ROOT / data["search"]["space"])
    path = tmp_path / "rq4.yaml"
    path.write_text(yaml.safe_dump(data))
    ray_before = ray.is_initialized()
    out = CliRunner().invoke(app, ["run", str(path), "--storage", str(tmp_path / "runs"),
                                   "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    assert out.exit_code == 2, out.output
    assert "cannot reach the model" in out.output and "model.name: 'huggyllama/llama-7b'" \
        in out.output
    assert "huggingface-cli download huggyllama/llama-7b" in out.output
    assert "HF_HUB_OFFLINE" in out.output and "Traceback" not in out.output
    assert ray.is_initialized() == ray_before
    assert not (tmp_path / "runs").exists() and not (tmp_path / "mlflow.db").exists()
