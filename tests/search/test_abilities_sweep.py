"""A lab sweep with five abilities: the study's three, one lm-eval task from a local task YAML
(include_path), and one held-out loss (`loss_math`, minimized). Every trial reports all five with
95% intervals, the loss has a history per epoch in MLflow, and the front and the report the CLI
prints are over all five. The same trial's records show lm-eval's lab math and sftmix's own math
scorer agree problem by problem (same prompts, same greedy generations, same verdicts). And one
FSDP trial on two workers scores an lm-eval ability and the held-out loss through the trial's own
path."""

import json
import shlex
import shutil
from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

from sftmix_ray.cli import app
from sftmix_ray.config import load_sweep
from sftmix_ray.evaluate.lm_eval_run import LAB_TASKS
from sftmix_ray.search.tuner import run_sweep

from ..evaluate.test_standalone_lm_eval import agree

pytestmark = pytest.mark.integration

OBJECTIVES = {"math": "max", "code": "max", "general": "max", "labmath": "max",
              "loss_math": "min"}
N = 6  # math problems: sftmix's and lm-eval's (limit) alike


def local_task_dir(tmp_path: Path) -> Path:
    """A user's own task YAML (and the Python its !function lines name) in a directory of its
    own, as include_path finds it: the lab math task, renamed, generating as many tokens as
    sftmix's math evaluation does."""
    out = tmp_path / "tasks"
    out.mkdir()
    shutil.copy(LAB_TASKS / "lab_docs.py", out / "lab_docs.py")
    text = (LAB_TASKS / "sftmix_lab_math.yaml").read_text()
    text = text.replace("task: sftmix_lab_math", "task: my_lab_math")
    (out / "my_lab_math.yaml").write_text(text.replace("max_gen_toks: 96", "max_gen_toks: 16"))
    return out


def test_five_abilities_flow_to_tune_mlflow_front_and_report(write_sweep, tmp_path):
    evaluate = {"math": {"n": N, "max_new_tokens": 16},
                "code": {"n": 4, "max_new_tokens": 16, "timeout_s": 3},
                "general": {"n": 4, "max_new_tokens": 8},
                "abilities": {"labmath": {"task": "my_lab_math",
                                          "include_path": str(local_task_dir(tmp_path)),
                                          "metric": "exact_match,strict-match", "limit": N}},
                "heldout_loss": {"n": 8}}
    train = {"lr": 3e-3, "epochs": 2, "batch_size": 8, "max_length": 160}
    path = write_sweep(evaluate=evaluate, train=train)
    validated = CliRunner().invoke(app, ["validate", str(path)])
    assert validated.exit_code == 0, validated.output
    sweep, space = load_sweep(path, {"search.objectives": OBJECTIVES})
    outcome = run_sweep(sweep, space)

    mlflow.set_tracking_uri(outcome.tracking_uri)
    runs = mlflow.search_runs(search_all_experiments=True, filter_string=(
        f"tags.mlflow.parentRunId = '{outcome.parent_run_id}'"))
    assert len(runs) == 2 and (runs["status"] == "FINISHED").all(), runs["status"].tolist()
    client = mlflow.MlflowClient()
    for _, run in runs.iterrows():
        for name in OBJECTIVES:
            low, value, high = (run[f"metrics.{name}{s}"] for s in ("_ci_low", "", "_ci_high"))
            assert low <= value <= high, (name, low, value, high)
            assert run[f"metrics.{name}_n"] == (8 if name == "loss_math" else
                                                N if name in ("math", "labmath") else 4)
        # one point per trained epoch, over every stage (DMT trains two stages of 2 epochs)
        manifest = json.loads(Path(client.download_artifacts(run["run_id"], "manifest.json"))
                              .read_text())
        epochs = sum(st["epochs"] or train["epochs"] for st in manifest["stages"])
        history = client.get_metric_history(run["run_id"], "loss_math")
        assert sorted(m.step for m in history if m.step > 0) == list(range(1, epochs + 1))
        assert run["metrics.loss_math"] == [m for m in history if m.step == epochs][0].value
        assert run["metrics.heldout_seconds"] > 0
        described = run["tags.mlflow.note.content"]  # the run's description lists all five
        assert all(f"{name} " in described.split("→")[1] for name in OBJECTIVES), described
        _agree(client, run)

    # the commands the sweep prints next, as printed: they name the sweep's five objectives
    from sftmix_ray.cli import print_answer
    from sftmix_ray.cli.common import console

    with console.capture() as printed:
        print_answer(outcome, OBJECTIVES)
    commands = {line.split()[1]: shlex.split(line.strip())[1:]
                for line in printed.get().splitlines() if line.strip().startswith("sftmix ")}
    front = CliRunner().invoke(app, commands["pareto"])
    assert front.exit_code == 0, front.output
    assert "front: " in front.output  # the hypervolume's reference names every objective
    for name in OBJECTIVES:
        assert f"{name}=" in front.output
    assert {r["trial_id"] for r in outcome.front} and all(
        name in r for r in outcome.front for name in OBJECTIVES)
    report = CliRunner().invoke(app, [*commands["report"], "--out", str(tmp_path / "report")])
    assert report.exit_code == 0, report.output
    md = (tmp_path / "report" / "report.md").read_text()
    for name in OBJECTIVES:
        assert name in md


def _agree(client, run) -> None:
    """lm-eval's lab math and sftmix's math scorer on the same trained model and problems
    (generating as many tokens): the same generation, answer and verdict for each problem."""
    local = client.download_artifacts(run["run_id"], "evaluation/eval_records.json")
    records = json.loads(Path(local).read_text())
    assert len(records["math"]) == len(records["labmath"]) == N
    agree(records["math"], records["labmath"])


FSDP_SPACE = {"domains": ["math", "code", "general"], "specialized": ["math", "code"],
              "ratio": {"kind": "fixed", "fixed": {"math": 1, "code": 1, "general": 1}},
              "amount": {"choices": [60]}, "strategies": {"multi_task": {}}}


def test_an_lm_eval_ability_and_the_heldout_loss_in_an_fsdp_trial_on_two_workers(write_sweep):
    """A trial's own path under FSDP over two Ray Train workers (gloo on CPU): every rank
    measures its share of the held-out loss after each epoch; rank 0 runs lm-eval on the
    unsharded weights while rank 1 waits at its next collective; the trial finishes."""
    train = {"lr": 3e-3, "epochs": 2, "batch_size": 4, "max_length": 160, "workers": 2,
             "cpus_per_worker": 0.99, "parallel": "fsdp", "collective_timeout_s": 120}
    evaluate = {"batch_size": 1, "math": {"n": 3, "max_new_tokens": 8},
                "code": {"n": 3, "max_new_tokens": 8, "timeout_s": 3},
                "general": {"n": 3, "max_new_tokens": 6},
                "abilities": {"mc": {"task": "sftmix_lab_math_mc", "limit": 5}},
                "heldout_loss": {"n": 5}}
    sweep, space = load_sweep(write_sweep(space=FSDP_SPACE, train=train, evaluate=evaluate),
                              {"search.algorithm": "grid", "search.num_samples": 1})
    outcome = run_sweep(sweep, space)
    mlflow.set_tracking_uri(outcome.tracking_uri)
    runs = mlflow.search_runs(search_all_experiments=True, filter_string=(
        f"tags.mlflow.parentRunId = '{outcome.parent_run_id}'"))
    assert len(runs) == 1 and runs.iloc[0]["status"] == "FINISHED"
    run = runs.iloc[0]
    for name, n in [("mc", 5), *((f"loss_{d}", 5) for d in ("math", "code", "general"))]:
        low, value, high = (run[f"metrics.{name}{s}"] for s in ("_ci_low", "", "_ci_high"))
        assert low <= value <= high and run[f"metrics.{name}_n"] == n, name
    assert 0.0 <= run["metrics.mc"] <= 1.0 and run["metrics.loss_math"] > 0
    history = mlflow.MlflowClient().get_metric_history(run["run_id"], "loss_code")
    assert sorted(m.step for m in history if m.step > 0) == [1, 2]
