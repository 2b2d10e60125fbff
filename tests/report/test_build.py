"""`sftmix report` on a constructed sweep whose answers are known: single-domain scaling (math
keeps improving, general plateaus), mixing, DMT's k, and two seeds per point."""

import mlflow
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from sftmix_ray.cli import app

DOMAINS = ("math", "code", "general")


def _trial(client, exp, parent, name, seed, samples, scores, strategy="multi_task", k=None):
    tags = {"mlflow.parentRunId": parent}
    rid = client.create_run(exp, run_name=name, tags=tags).info.run_id
    client.log_param(rid, "strategy", strategy)
    client.log_param(rid, "seed", seed)
    for d in DOMAINS:
        client.log_param(rid, f"counts.{d}", samples.get(d, 0))
        client.log_metric(rid, f"samples_{d}", samples.get(d, 0))
    if k is not None:
        client.log_param(rid, "k", k)
    for o, v in scores.items():
        client.log_metric(rid, o, v + 0.01 * seed)  # a second seed shifts every score a little
    client.set_terminated(rid, "FINISHED")


def _sweep(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("constructed")
    parent = client.create_run(exp, run_name="sweep-constructed").info.run_id
    client.log_param(parent, "search", "grid")
    for seed in (0, 1):
        for n, m, g in ((100, 0.10, 0.50), (1000, 0.30, 0.60), (10000, 0.60, 0.601)):
            _trial(client, exp, parent, f"math-{n}-s{seed}", seed, {"math": n},
                   {"math": m, "code": 0.0, "general": 0.1})
            _trial(client, exp, parent, f"general-{n}-s{seed}", seed, {"general": n},
                   {"math": 0.0, "code": 0.0, "general": g})
        _trial(client, exp, parent, f"mixed-s{seed}", seed,
               {"math": 1000, "code": 1000, "general": 1000},
               {"math": 0.35, "code": 0.2, "general": 0.55})
        for k, (m, g) in ((1.0, (0.5, 0.4)), (0.25, (0.45, 0.5)), (0.0625, (0.4, 0.55))):
            _trial(client, exp, parent, f"dmt-{k}-s{seed}", seed,
                   {"math": 1000, "code": 1000, "general": 1000},
                   {"math": m, "code": 0.1, "general": g}, strategy="dmt", k=k)
    failed = client.create_run(exp, run_name="broken", tags={"mlflow.parentRunId": parent,
                                                             "sftmix.error": "MixtureError: x"})
    client.set_terminated(failed.info.run_id, "FAILED")
    return uri, parent


def test_report_from_a_constructed_sweep(tmp_path):
    uri, parent = _sweep(tmp_path)
    out = CliRunner().invoke(app, ["report", "--sweep", parent, "--tracking-uri", uri,
                                   "--out", str(tmp_path / "report")])
    assert out.exit_code == 0, out.output
    assert "(10 points, 1 failed runs" in out.output  # 20 runs: two seeds per point
    html = (tmp_path / "report" / "report.html").read_text()
    md = (tmp_path / "report" / "report.md").read_text()
    for figure in ("pairwise", "parallel", "scaling", "mixed_vs_single", "dmt_k"):
        assert f"alt='{figure}'" in html and (tmp_path / "report" / f"{figure}.png").is_file()
    assert "math trained alone keeps improving: 0.105 at 100 samples" in md
    assert "general trained alone plateaus" in md
    assert "Mixing the other domains in helps math (mixed − alone: +0.050 at 1000)" in md
    assert "hurts general (mixed − alone: −0.050 at 1000)" in md
    assert "0.105 ± 0.007" in md  # mean ± std over the two seeds
    assert "10 of 10 points ran with several seeds" in md
    assert "dmt (k=0.0625)" in md and "broken: MixtureError: x" in html
    mlflow.set_tracking_uri(uri)
    logged = {a.path for a in mlflow.artifacts.list_artifacts(run_id=parent,
                                                              artifact_path="report")}
    assert "report/report.html" in logged and "report/scaling.png" in logged


def test_report_refuses_an_unknown_sweep(tmp_path):
    uri, _ = _sweep(tmp_path)
    out = CliRunner().invoke(app, ["report", "--sweep", "nope", "--tracking-uri", uri])
    assert out.exit_code == 2 and "no run 'nope'" in out.output
