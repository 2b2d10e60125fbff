"""`sftmix report` on a constructed sweep whose answers are known: single-domain scaling (math
keeps improving, general stops gaining within noise), mixing within noise, DMT's k, code at the
floor everywhere, and two seeds per point. Trials log Wilson intervals over 200 problems, except
the DMT ones, which stand for older runs logged before intervals existed."""

import mlflow
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from scipy.stats import binomtest
from typer.testing import CliRunner

from sftmix_ray.cli import app

DOMAINS = ("math", "code", "general")
PROBLEMS = 200


def _trial(client, exp, parent, name, seed, samples, scores, strategy="multi_task", k=None,
           intervals=True):
    tags = {"mlflow.parentRunId": parent}
    rid = client.create_run(exp, run_name=name, tags=tags).info.run_id
    params = {"strategy": strategy, "seed": seed} | {f"counts.{d}": samples.get(d, 0)
                                                    for d in DOMAINS}
    if k is not None:
        params["k"] = k
    metrics = {f"samples_{d}": samples.get(d, 0) for d in DOMAINS}
    for o, v in scores.items():
        v = v + 0.01 * seed if v else v  # a second seed shifts a score a little; 0 stays 0
        metrics[o] = v
        if intervals:
            ci = binomtest(round(v * PROBLEMS), PROBLEMS).proportion_ci(method="wilson")
            metrics |= {f"{o}_ci_low": ci.low, f"{o}_ci_high": ci.high, f"{o}_n": PROBLEMS}
    # one batch per run: a write per metric made the constructed sweep slow to log
    client.log_batch(rid, metrics=[Metric(key, float(v), 0, 0) for key, v in metrics.items()],
                     params=[Param(key, str(v)) for key, v in params.items()])
    client.set_terminated(rid, "FINISHED")


def _sweep(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("constructed")
    parent = client.create_run(exp, run_name="sweep-constructed").info.run_id
    client.log_param(parent, "search", "grid")
    for seed in (0, 1):
        for n, m, g in ((100, 0.10, 0.50), (300, 0.20, 0.55), (1000, 0.30, 0.60),
                        (3000, 0.45, 0.60), (10000, 0.60, 0.601)):
            _trial(client, exp, parent, f"math-{n}-s{seed}", seed, {"math": n},
                   {"math": m, "code": 0.0, "general": 0.1})
            _trial(client, exp, parent, f"general-{n}-s{seed}", seed, {"general": n},
                   {"math": 0.0, "code": 0.0, "general": g})
        _trial(client, exp, parent, f"mixed-s{seed}", seed,
               {"math": 1000, "code": 1000, "general": 1000},
               {"math": 0.35, "code": 0.0, "general": 0.55})
        for k, (m, g) in ((1.0, (0.5, 0.4)), (0.25, (0.45, 0.5)), (0.0625, (0.4, 0.55))):
            _trial(client, exp, parent, f"dmt-{k}-s{seed}", seed,
                   {"math": 1000, "code": 1000, "general": 1000},
                   {"math": m, "code": 0.0, "general": g}, strategy="dmt", k=k,
                   intervals=False)
    failed = client.create_run(exp, run_name="broken", tags={"mlflow.parentRunId": parent,
                                                             "sftmix.error": "MixtureError: x"})
    client.set_terminated(failed.info.run_id, "FAILED")
    return uri, parent


def test_report_from_a_constructed_sweep(tmp_path):
    uri, parent = _sweep(tmp_path)
    out = CliRunner().invoke(app, ["report", "--sweep", parent, "--tracking-uri", uri,
                                   "--out", str(tmp_path / "report")])
    assert out.exit_code == 0, out.output
    assert "(14 points, 1 failed runs" in out.output  # 28 runs: two seeds per point
    html = (tmp_path / "report" / "report.html").read_text()
    md = (tmp_path / "report" / "report.md").read_text()
    for figure in ("pairwise", "parallel", "scaling", "mixed_vs_single", "dmt_k"):
        assert f"alt='{figure}'" in html and (tmp_path / "report" / f"{figure}.png").is_file()
    assert ("math trained alone (single-domain trials only): math rises with the amount of math "
            "data (Spearman ρ = +1.00, p = 0.017, 5 points)") in md
    assert "Pooled over all mixtures: no evidence of a trend of math with the total amount" in md
    assert "math trained alone: 0.105 [" in md
    assert "it keeps improving from 1000 samples to 10000 samples (95% intervals apart)" in md
    assert "general trained alone: 0.505 [" in md and \
        "no evidence that it still gains from 1000 samples to 10000 samples" in md
    assert ("No evidence that mixing the other domains in changes math (intervals overlap) "
            "(mixed − alone: +0.050 at 1000") in md
    assert "code is at the floor in every one of the 14 points" in md
    assert "On code across strategies: no leader (" in md
    assert "dmt (k=1) (n=1) scores best (0.505) ahead of dmt (k=0.25) (n=1) (0.455); the " \
        "difference is untested (no interval)" in md
    assert "Best on general: within noise: general-10000-s0 0.606 [" in md
    assert "| no: within noise of 5 others |" in md and "| no: at the floor |" in md
    assert "No interval on some scores: math (3 of 14 points)" in md
    assert "0.105 ± 0.007" in md  # mean ± std over the two seeds
    assert "14 of 14 points ran with several seeds" in md
    assert "0.405 no interval (n=1)" in md  # a DMT cell of the strategy table
    assert "code is at the floor in every one of the 14 points" in html
    assert "within noise: general-10000-s0" in html
    assert "dmt (k=0.0625)" in md and "broken: MixtureError: x" in html
    mlflow.set_tracking_uri(uri)
    logged = {a.path for a in mlflow.artifacts.list_artifacts(run_id=parent,
                                                              artifact_path="report")}
    assert "report/report.html" in logged and "report/scaling.png" in logged


def test_report_refuses_an_unknown_sweep(tmp_path):
    uri, _ = _sweep(tmp_path)
    out = CliRunner().invoke(app, ["report", "--sweep", "nope", "--tracking-uri", uri])
    assert out.exit_code == 2 and "no run 'nope'" in out.output
