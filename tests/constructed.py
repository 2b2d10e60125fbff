"""Sweeps written straight into a real MLflow store (SQLite), shaped as `sftmix run` writes them:
a parent run with `sweep.json` and `search_space.json`, a child run per trial with the point's
flat params and its scores. For the readers (surrogate, propose, report) without running Ray."""

import math

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from sftmix_ray.config.point import TrialPoint

DOMAINS = ["math", "code", "general"]
SPACE = {"domains": DOMAINS, "specialized": ["math", "code"], "ratio": {"kind": "simplex"},
         "amount": {"low": 100, "high": 1000, "log": True},
         "strategies": {"multi_task": {}, "dmt": {"k": [0.25, 1.0]}}}


def scores(point: dict, level: float = 1.0) -> dict[str, float]:
    """A smooth landscape with a trade-off: each ability grows with its domain's share and with
    the amount; DMT keeps a little more general. `level` scales it (a proxy's lower scores)."""
    r, a = point["ratio"], math.log(point["amount"]) / math.log(1000)
    bonus = 0.05 if point["strategy"] == "dmt" else 0.0
    return {"math": level * a * r["math"] ** 0.7, "code": level * a * r["code"] ** 0.7,
            "general": level * (r["general"] ** 0.5 + bonus)}


def points(n: int, seed: int = 0) -> list[dict]:
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        ratio = dict(zip(DOMAINS, rng.dirichlet([1, 1, 1]).round(4).tolist()))
        strategy = "dmt" if i % 3 == 2 else "multi_task"
        out.append(TrialPoint(ratio=ratio, amount=int(rng.integers(100, 1001)),
                              strategy=strategy, k=0.25 if strategy == "dmt" else None
                              ).to_wire())
    return out


def log_sweep(uri: str, experiment: str, pts: list[dict], *, level: float = 1.0,
              sweep: dict | None = None, seeds: tuple = (None,)) -> str:
    """A finished sweep of these points (each once per seed); returns the parent run id."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    exp = exp.experiment_id if exp else client.create_experiment(experiment)
    parent = client.create_run(exp, run_name=experiment,
                               tags={"sftmix.kind": "sweep"}).info.run_id
    if sweep is not None:
        client.log_dict(parent, sweep, "sweep.json")
        client.log_dict(parent, SPACE, "search_space.json")
    for i, p in enumerate(pts):
        for seed in seeds:
            point = TrialPoint.from_wire({**p, **({"seed": seed} if seed is not None else {})})
            rid = client.create_run(exp, run_name=f"trial-{i}-{seed}",
                                    tags={"mlflow.parentRunId": parent}).info.run_id
            values = scores(p, level)
            if seed:
                values = {o: v + 0.01 * seed for o, v in values.items()}
            client.log_batch(rid, metrics=[Metric(o, v, 0, 0) for o, v in values.items()],
                             params=[Param(k, str(v)) for k, v in point.flat_params().items()])
            client.set_terminated(rid, "FINISHED")
    client.set_terminated(parent, "FINISHED")
    return parent
