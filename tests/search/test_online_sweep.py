"""`sftmix run` of a lab sweep whose space includes `online` (both methods beside multi-task):
each online trial's weight trajectory reaches MLflow as metric history with steps, its final and
mean weights as params; `sftmix report`, as the run prints it, draws the trajectory; `sftmix
propose` reads the sweep back with the online trials as one more strategy."""

import shlex

import mlflow
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from sftmix_ray.cli import app

pytestmark = pytest.mark.integration

DOMAINS = ["math", "code", "general"]
SPACE = {"domains": DOMAINS, "specialized": ["math", "code"],
         "ratio": {"kind": "fixed", "fixed": {"math": 2, "code": 1, "general": 1}},
         "amount": {"choices": [40]},
         "strategies": {"multi_task": {},
                        "online": {"methods": ["exp3", "doremi"], "step_size": {"choices": [2]},
                                   "smoothing": {"choices": [0.2]},
                                   "warmup": {"choices": [0.0]},
                                   "update_every": {"choices": [1]}}}}


def test_online_trials_record_their_trajectory_and_the_report_draws_it(write_sweep, tmp_path):
    train = {"lr": 3e-3, "epochs": 2, "batch_size": 8, "max_length": 160}
    path = write_sweep(space=SPACE, train=train, search={
        "space": str(tmp_path / "space.yaml"), "algorithm": "grid", "num_samples": 1,
        "seed": 0})
    res = CliRunner().invoke(app, ["run", str(path)])
    assert res.exit_code == 0, res.output
    commands = {line.split()[1]: shlex.split(line.strip())[1:]
                for line in res.output.splitlines() if line.strip().startswith("sftmix ")}
    uri = commands["report"][commands["report"].index("--tracking-uri") + 1]
    parent = commands["report"][commands["report"].index("--sweep") + 1]

    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient()
    runs = mlflow.search_runs(search_all_experiments=True,
                              filter_string=f"tags.mlflow.parentRunId = '{parent}'")
    assert len(runs) == 3 and (runs["status"] == "FINISHED").all(), runs["status"].tolist()
    online = runs[runs["params.strategy"] == "online"]
    assert sorted(online["params.online.method"]) == ["doremi", "exp3"]
    steps = 80 // 8  # amount × epochs draws in micro-batches of 8
    for _, run in online.iterrows():
        method = run["params.online.method"]
        final = {d: float(run[f"params.weights_final.{d}"]) for d in DOMAINS}
        mean = {d: float(run[f"params.weights_mean.{d}"]) for d in DOMAINS}
        assert abs(sum(final.values()) - 1) < 1e-4 and abs(sum(mean.values()) - 1) < 1e-4
        assert sum(run[f"metrics.drawn_{d}"] for d in DOMAINS) == 80  # the same data budget
        hist = {d: sorted((m.step, m.value) for m in
                          client.get_metric_history(run["run_id"], f"weight_{d}"))
                for d in DOMAINS}
        for d in DOMAINS:
            assert [s for s, _ in hist[d]] == list(range(steps)), (method, d, hist[d])
            # starts at the prior (smoothed), ends at the logged final weights
            assert np.isclose(hist[d][0][1], 0.8 * {"math": .5}.get(d, .25) + 0.2 / 3)
            assert np.isclose(hist[d][-1][1], final[d], atol=1e-6)
            assert min(w for _, w in hist[d]) >= 0.2 / 3 - 1e-9  # the smoothing floor
        assert any(not np.isclose(hist["math"][i][1], hist["math"][0][1])
                   for i in range(1, steps)), f"{method}: the weights never moved"
        losses = {d: client.get_metric_history(run["run_id"], f"online_loss_{d}")
                  for d in DOMAINS}
        assert all(np.isfinite(m.value) and 0 < m.value < 20 for d in DOMAINS
                   for m in losses[d])
        # every interval drew some domain (a domain not drawn in one logs no loss for it)
        assert {m.step for d in DOMAINS for m in losses[d]} == set(range(1, steps))
        ref = client.get_metric_history(run["run_id"], "reference_loss_math")
        assert bool(ref) == (method == "doremi")
    # a static trial has no trajectory
    static = runs[runs["params.strategy"] == "multi_task"].iloc[0]
    assert not client.get_metric_history(static["run_id"], "weight_math")

    report = CliRunner().invoke(app, [*commands["report"], "--out", str(tmp_path / "report")])
    assert report.exit_code == 0, report.output
    md = (tmp_path / "report" / "report.md").read_text()
    assert "Online trials: domain weights during training" in md
    assert "![online_weights](online_weights.png)" in md
    assert "online (exp3)" in md and "online (doremi)" in md  # each method a strategy
    assert "prior code=10 general=10 math=20" in md  # an online row names its prior
    assert (tmp_path / "report" / "online_weights.png").stat().st_size > 5000
    assert "online_weights" in (tmp_path / "report" / "report.html").read_text()

    # propose for the same sweep with the ratio, amount and step size searched (the grid's
    # space has no point left to propose)
    wide = {**SPACE, "ratio": {"kind": "simplex"}, "amount": {"low": 30, "high": 60},
            "strategies": {**SPACE["strategies"], "online": {
                **SPACE["strategies"]["online"], "step_size": {"low": 0.5, "high": 4}}}}
    (tmp_path / "wide.yaml").write_text(yaml.safe_dump(wide))
    target = yaml.safe_load(path.read_text())
    target["search"] = {"space": str(tmp_path / "wide.yaml"), "num_samples": 2, "seed": 0}
    (tmp_path / "target.yaml").write_text(yaml.safe_dump(target))
    out = tmp_path / "proposed.yaml"
    proposed = CliRunner().invoke(app, [*commands["propose"], "--n", "2", "--out", str(out),
                                        "--sweep", str(tmp_path / "target.yaml")])
    assert proposed.exit_code == 0, proposed.output
    warm = yaml.safe_load(out.read_text())["search"]["warm_start"]
    assert len(warm) == 2 and all(p["strategy"] in ("multi_task", "online") for p in warm)
    assert all(p["online"]["method"] in ("exp3", "doremi") for p in warm
               if p["strategy"] == "online")
