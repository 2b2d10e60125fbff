"""`sftmix eval` in MLflow: one run per evaluated model, with its scores and records."""

from __future__ import annotations

from pathlib import Path

from .store import client_for, experiment_id


def log_to_mlflow(result: dict, *, model_id: str, benchmarks: list[str], cfg,
                  tracking_uri: str, experiment: str, out_dir: Path) -> str:
    client = client_for(tracking_uri)
    exp_id = experiment_id(client, experiment)
    run = client.create_run(exp_id, run_name=f"eval-{Path(model_id).name}",
                            tags={"sftmix.kind": "eval", **({"general_scorer":
                                                             result["general_scorer"]}
                                                            if result["general_scorer"] else {})})
    rid = run.info.run_id
    client.log_param(rid, "model", model_id)
    client.log_param(rid, "benchmarks", ",".join(benchmarks))
    for ability in ("math", "code", "general"):
        bench = getattr(cfg, ability)
        if ability in result["scores"] or any(k.startswith(ability) for k in result["scores"]):
            client.log_param(rid, f"{ability}.source", bench.source)
            client.log_param(rid, f"{ability}.n", bench.n)
    for name, a in cfg.abilities.items():  # lm-eval tasks named by --ability
        client.log_param(rid, f"{name}.source", f"lm_eval:{a.task}")
        client.log_param(rid, f"{name}.metric", a.metric)
        if a.limit:
            client.log_param(rid, f"{name}.n", a.limit)
    for k, v in result["scores"].items():
        client.log_metric(rid, k, float(v))
    client.log_metric(rid, "eval_seconds", result["seconds"])
    client.log_metric(rid, "eval_cache_hit", int(result["cache_hit"]))
    client.log_artifacts(rid, str(out_dir), "evaluation")
    client.set_terminated(rid, "FINISHED")
    return rid
