"""A sweep's answer in MLflow, written by one function for `sftmix run` and `sftmix pareto` alike:
`pareto_front` and `pareto_rank` tags on every run (so the UI can filter the front:
`tags.pareto_front = "true"`), and on the sweep's parent run `pareto.json` (one schema) with the
front's size, its hypervolume and the trial counts."""

from __future__ import annotations

from .store import client_for


def run_status(run) -> str:
    """ok (finished), pruned (stopped early by the pruner), failed, or MLflow's own state."""
    if run.tags.get("sftmix.pruned"):
        return "pruned"
    return {"FINISHED": "ok", "FAILED": "failed"}.get(run.status, (run.status or "ok").lower())


def record_front(tracking_uri: str, analysis, runs: list, parent_id: str | None = None) -> None:
    client = client_for(tracking_uri)
    for run_id, front, rank in zip(analysis.run_ids, analysis.on_front, analysis.ranks):
        client.set_tag(run_id, "pareto_front", str(bool(front)).lower())
        client.set_tag(run_id, "pareto_rank", str(int(rank)))
    for run_id in analysis.missing:
        client.set_tag(run_id, "pareto_front", "false")
        client.set_tag(run_id, "pareto_rank", "none")
    noise = set(analysis.within_noise)
    for run_id in analysis.run_ids:
        client.set_tag(run_id, "pareto_within_noise", str(run_id in noise).lower())
    if parent_id is None:
        return
    statuses = [run_status(r) for r in runs]
    client.log_dict(parent_id, summary(analysis, runs), "pareto.json")
    client.log_metric(parent_id, "pareto_size", int(analysis.on_front.sum()))
    client.log_metric(parent_id, "hypervolume", analysis.hypervolume)
    client.log_metric(parent_id, "trials_ok", statuses.count("ok"))
    client.log_metric(parent_id, "trials_pruned", statuses.count("pruned"))
    client.log_metric(parent_id, "trials_failed",
                      sum(s not in ("ok", "pruned") for s in statuses))


def summary(analysis, runs: list) -> dict:
    """The `pareto.json` schema: objectives, what ranked them (`by`: scores or their pessimistic
    bounds), reference point, hypervolume, the front's run ids, the runs off the front but within
    noise of it, every run that carries the objectives (rank, front, values, status, trial id),
    and the runs left out for lacking one."""
    names = list(analysis.objectives)
    by_id = {r.run_id: r for r in runs}
    return {"objectives": analysis.objectives, "by": analysis.by,
            "reference": analysis.reference,
            "hypervolume": analysis.hypervolume, "front": analysis.front_ids(),
            "within_noise": analysis.within_noise,
            "runs": [{"run_id": rid, "name": by_id[rid].name if rid in by_id else rid,
                      "trial_id": by_id[rid].tags.get("sftmix.trial_id") if rid in by_id else None,
                      "status": run_status(by_id[rid]) if rid in by_id else "ok",
                      "rank": int(rank), "front": bool(front),
                      **{n: float(v) for n, v in zip(names, vals)}}
                     for rid, vals, rank, front in zip(analysis.run_ids, analysis.values,
                                                       analysis.ranks, analysis.on_front)],
            "missing": analysis.missing}
