"""`sftmix eval` scores a local model directory outside any sweep, records every sample, logs an
MLflow run, and answers a repeated request from the evaluation cache."""

import json

import mlflow
from typer.testing import CliRunner

from sftmix_ray.cli import app

from ..conftest import GSM8K

GSM8K_TEST = GSM8K / "test.jsonl"


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
    assert set(scores) == {"math", "math_flexible", "code", "code_pass_at_1",
                           *(f"{a}_{p}" for a in ("math", "code") for p in ("ci_low", "ci_high",
                                                                            "n"))}
    assert scores["math_ci_low"] <= scores["math"] <= scores["math_ci_high"]
    assert all(0.0 <= v <= 1.0 for k, v in scores.items() if not k.endswith("_n"))
    assert scores["math_n"] == 3 and scores["code_n"] == 3
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


def test_eval_mt_bench_with_a_judge_and_without_one(tmp_path, tiny_model_dir):
    from .test_judge import FakeJudge

    server = FakeJudge(["Rating: [[3]]"])
    try:
        common = ["eval", "--model", str(tiny_model_dir), "--benchmarks", "mt_bench", "--n", "2",
                  "--max-new-tokens", "6", "--no-cache",
                  "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
        judged = CliRunner().invoke(app, [*common, "--out", str(tmp_path / "judged"),
                                          "--judge-url", server.url, "--judge-model", "fake"])
        assert judged.exit_code == 0, judged.output
        assert len(server.requests) == 4  # 2 questions × 2 turns
        scores = json.loads((tmp_path / "judged" / "scores.json").read_text())
        assert scores["general"] == 3 and scores["mt_bench_unparsed"] == 0
        assert "general scorer: mt-bench-judge:fake" in judged.output
        # turn 2 is graded as the whole conversation, with the model's own turn-1 answer in it
        users = [r["body"]["messages"][1]["content"] for r in server.requests]
        assert sum("### Assistant A:" in u for u in users) == 2
    finally:
        server.close()
    offline = CliRunner().invoke(app, [*common, "--out", str(tmp_path / "offline")])
    assert offline.exit_code == 0, offline.output
    assert "offline-reference-f1:mt_bench-references" in offline.output  # never called MT-Bench
