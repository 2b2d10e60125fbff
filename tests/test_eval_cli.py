"""`sftmix eval` scores a local model directory outside any sweep, records every sample, logs an
MLflow run, and answers a repeated request from the evaluation cache."""

import json

import mlflow
from typer.testing import CliRunner

from sftmix_ray.cli import app

from .conftest import SHARED

GSM8K_TEST = SHARED / "data" / "gsm8k" / "test.jsonl"


def _eval(tmp_path, model_dir, *extra):
    args = ["eval", "--model", str(model_dir), "--benchmarks", "gsm8k,lab_code",
            "--gsm8k", str(GSM8K_TEST), "--n", "3", "--max-new-tokens", "8",
            "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"),
            "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", *extra]
    return CliRunner().invoke(app, args)


def test_eval_scores_records_tracks_and_caches(tmp_path, tiny_model_dir):
    first = _eval(tmp_path, tiny_model_dir)
    assert first.exit_code == 0, first.output
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert set(scores) == {"math", "math_flexible", "code", "code_pass_at_1"}
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    records = json.loads((tmp_path / "out" / "eval_records.json").read_text())
    assert len(records["math"]) == 3 and len(records["code"]) == 3
    gold = [json.loads(line) for line in GSM8K_TEST.read_text().splitlines()[:3]]
    assert [r["prompt"] for r in records["math"]] == [g["question"] for g in gold]
    assert {"output", "verdict"} <= set(records["code"][0])
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["sftmix-eval"])
    assert len(runs) == 1 and runs.iloc[0]["metrics.math"] == scores["math"]
    assert runs.iloc[0]["params.math.source"] == str(GSM8K_TEST)

    second = _eval(tmp_path, tiny_model_dir)
    assert second.exit_code == 0 and "from the evaluation cache" in second.output
    assert json.loads((tmp_path / "out" / "scores.json").read_text()) == scores


def test_eval_refuses_bad_input_with_the_field(tmp_path, tiny_model_dir):
    bad = _eval(tmp_path, tiny_model_dir, "--benchmarks", "mmlu")
    assert bad.exit_code == 2 and "--benchmarks: unknown ['mmlu']" in bad.output
    missing = CliRunner().invoke(app, ["eval", "--model", str(tiny_model_dir), "--benchmarks",
                                       "gsm8k", "--gsm8k", str(tmp_path / "none.jsonl"),
                                       "--out", str(tmp_path / "o")])
    assert missing.exit_code == 2 and "evaluate.math.source: no such file" in missing.output
