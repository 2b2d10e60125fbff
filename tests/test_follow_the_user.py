"""Follow the user: a real lab sweep run by `sftmix run`, then every command its own last lines,
the README and the commands' own outputs name as the next step, each on that sweep's real output,
each exiting 0 with its output checked for what it must say. The unit tests built their rows by
hand with distinct values and passed while `sftmix report` crashed on the quickstart's two DMT
trials at one k (issue 22); this test runs what a user runs."""

from __future__ import annotations

import json
import re
import shlex
import urllib.request
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sftmix_ray.cli import app

pytestmark = pytest.mark.integration  # a real Ray sweep: the slow tier

# Two DMT trials at one k first (the quickstart's crash), then one the sampler picks.
WARM = [{"strategy": "dmt", "k": 0.25, "ratio": {"math": 0.5, "code": 0.25, "general": 0.25},
         "amount": 80},
        {"strategy": "dmt", "k": 0.25, "ratio": {"math": 0.2, "code": 0.6, "general": 0.2},
         "amount": 100}]


def _sftmix(*args: str) -> str:
    """One `sftmix` command, in this process (the session's Ray serves every sweep in it)."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, f"sftmix {' '.join(args)}:\n{result.output}"
    return result.output


def _printed_commands(output: str) -> list[list[str]]:
    """The `sftmix …` lines a command printed for the user to run next, as argument lists."""
    return [shlex.split(line.strip())[1:] for line in output.splitlines()
            if line.strip().startswith("sftmix ")]


def _rest_search(server_uri: str, experiment_id: str, filter_string: str) -> list[dict]:
    """The README's REST query: POST /api/2.0/mlflow/runs/search."""
    body = json.dumps({"experiment_ids": [experiment_id], "filter": filter_string,
                       "max_results": 1000}).encode()
    request = urllib.request.Request(f"{server_uri}/api/2.0/mlflow/runs/search", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read()).get("runs", [])


def test_every_next_step_works_on_a_real_sweep(write_sweep, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # proposals, reports and eval records land where a user is
    search = {"space": str(tmp_path / "space.yaml"), "num_samples": 3, "seed": 0,
              "warm_start": WARM}
    sweep_file = write_sweep(search=search)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment = "sftmix-t"

    # 1. the sweep, and the lines it ends with
    out = _sftmix("run", str(sweep_file))
    run_id = re.search(r"parent run (\w+)", out).group(1)
    assert re.search(r"Pareto front: \d of 3 trials", out)
    assert "→ math 0." in out and "% math · " in out  # trial lines: shares apart from scores
    printed = _printed_commands(out)
    assert [c[0] for c in printed] == ["report", "pareto", "propose"], out

    # 2. each printed command, exactly as printed
    report = _sftmix(*printed[0])
    assert "report.html" in report and "3 points, 0 failed runs" in report
    page = (tmp_path / "report" / "report.html").read_text()
    assert "Pareto front and all points" in page and ("DMT" in page or "dmt" in page)
    pareto = _sftmix(*printed[1])
    assert "runs by lower" in pareto and re.search(r"front: \d of 3", pareto)
    propose = _sftmix(*printed[2])
    assert "written: sweeps/proposed.yaml" in propose and propose.count("[") >= 4
    proposed = yaml.safe_load(Path("sweeps/proposed.yaml").read_text())
    assert len(proposed["search"]["warm_start"]) == 4
    assert len({json.dumps(p, sort_keys=True) for p in proposed["search"]["warm_start"]}) == 4
    for line in propose.splitlines():  # every predicted interval inside the scores' range
        for low, high in re.findall(r"\[(-?[\d.]+), (-?[\d.]+)\]", line):
            assert 0.0 <= float(low) <= float(high) <= 1.0, line

    # 3. the same by experiment, and the front by the scores themselves
    by_experiment = _sftmix("report", "--experiment", experiment, "--tracking-uri", uri,
                            "--out", "report-exp")
    assert "3 points" in by_experiment
    assert "runs by mean" in _sftmix("pareto", "--experiment", experiment, "--by", "mean",
                                     "--tracking-uri", uri)
    again = _sftmix("propose", "--from", experiment, "--n", "1", "--out", "sweeps/next.yaml",
                    "--tracking-uri", uri)
    command = _printed_commands(again.split("run it with:")[-1])[0]
    assert command == ["run", "sweeps/next.yaml"]

    # 4. the proposed sweep, one trial of it
    ran = _sftmix(*command, "--num-samples", "1")
    assert "Pareto front: 1 of 1 trials" in ran

    # 5. a trial's weights scored again outside the sweep
    import mlflow

    mlflow.set_tracking_uri(uri)
    trial = mlflow.search_runs(experiment_names=[experiment],
                               filter_string=f"tags.mlflow.parentRunId = '{run_id}'").iloc[0]
    scored = _sftmix("eval", "--model", trial["tags.sftmix.model_path"], "--benchmarks",
                     "lab_math,lab_code,lab_general", "--n", "4", "--max-new-tokens", "16",
                     "--tracking-uri", uri, "--out", "eval")
    assert re.search(r"\bmath\b.*?[01]\.\d{4}", scored, re.S) and "MLflow run" in scored
    assert json.loads(Path("eval/eval_records.json").read_text())

    # 6. resume on a finished sweep: nothing to do, and it says so
    resumed = _sftmix("resume", str(sweep_file))
    assert "already finished" in resumed and "nothing to resume" in resumed
    assert run_id in resumed  # the same answer, from the same parent run

    # 7. the parent run shows the front without `sftmix report`, and the README's REST query
    artifacts = {a.path for a in mlflow.MlflowClient(uri).list_artifacts(run_id)}
    assert "front.png" in artifacts
    from tests.services import MLflowServer

    server = MLflowServer(uri, str(tmp_path / "served-artifacts"), {},
                          log=tmp_path / "mlflow-server.log")
    try:
        server.start()
        exp_id = mlflow.get_experiment_by_name(experiment).experiment_id
        front = _rest_search(server.uri, exp_id, 'tags.pareto_front = "true"')
        every = _rest_search(server.uri, exp_id, "")
    finally:
        server.stop()
    assert front and {r["info"]["run_id"] for r in front} <= {r["info"]["run_id"] for r in every}
    for run in front:
        tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
        assert tags["pareto_front"] == "true" and "→ math 0." in tags["mlflow.note.content"]
