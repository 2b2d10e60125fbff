"""Write a front back into MLflow: `pareto_front` and `pareto_rank` tags on every run (so the UI
can filter the front: `tags.pareto_front = "true"`), and the analysis as `pareto.json` on the
sweep's parent run."""

from __future__ import annotations


def tag_runs(tracking_uri: str, analysis, parent_id: str | None = None) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    for run_id, front, rank in zip(analysis.run_ids, analysis.on_front, analysis.ranks):
        client.set_tag(run_id, "pareto_front", str(bool(front)).lower())
        client.set_tag(run_id, "pareto_rank", str(int(rank)))
    for run_id in analysis.missing:
        client.set_tag(run_id, "pareto_front", "false")
        client.set_tag(run_id, "pareto_rank", "none")
    if parent_id is not None:
        client.log_dict(parent_id, summary(analysis), "pareto.json")
        client.log_metric(parent_id, "pareto_size", int(analysis.on_front.sum()))
        client.log_metric(parent_id, "hypervolume", analysis.hypervolume)


def summary(analysis) -> dict:
    names = list(analysis.objectives)
    return {"objectives": analysis.objectives, "reference": analysis.reference,
            "hypervolume": analysis.hypervolume, "front": analysis.front_ids(),
            "runs": [{"run_id": rid, "rank": int(rank), "front": bool(front),
                      **{n: float(v) for n, v in zip(names, vals)}}
                     for rid, vals, rank, front in zip(analysis.run_ids, analysis.values,
                                                       analysis.ranks, analysis.on_front)],
            "missing": analysis.missing}
