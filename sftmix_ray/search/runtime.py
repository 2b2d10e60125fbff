"""Starting or joining Ray, tuned for short trials, and bounding concurrency by real capacity."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

# Per-trial overhead is the enemy of short trials (benchmarks/trial_overhead.py measures it):
# - Ray Train's controller polls its workers every 2 s by default; a short trial waits on that poll
#   at start and end.
# - the preemption watcher, Train metrics and structured-logging setup each add work to every
#   controller and worker start, and a laptop sweep has no use for them.
FAST_TRAIN_ENV = {
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.1",
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
    "RAY_TRAIN_METRICS_ENABLED": "0",
    "RAY_TRAIN_ENABLE_CONTROLLER_STRUCTURED_LOGGING": "0",
    "RAY_TRAIN_ENABLE_WORKER_STRUCTURED_LOGGING": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
}


def ensure_ray(address: str | None = None, quiet: bool = True) -> None:
    import ray

    if ray.is_initialized():
        return
    for key, value in FAST_TRAIN_ENV.items():
        os.environ.setdefault(key, value)  # inherited by a local cluster's processes
    joining = address is not None or os.environ.get("RAY_ADDRESS")
    token = Path.home() / ".ray" / "auth_token"
    if "RAY_AUTH_MODE" not in os.environ and (not joining or token.is_file()):
        # Joining: `ray start` turns token auth on when this token file exists, but a driver
        # joining the cluster does not send it unless told to (ray 2.60), and is refused.
        # Local: Ray's default (token auth), stated explicitly, so Ray skips its notice about
        # the default, which reads like a problem on a laptop run.
        _token_auth_on()
    if quiet:
        # Tune's console reporter prints a settings table and a TensorBoard hint, neither of
        # which this tool's own progress lines need; its legacy reporter at verbose=0 is silent.
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    ray.init(address=address, include_dashboard=False, log_to_driver=not quiet,
             runtime_env=runtime_env_extension({k: os.environ[k] for k in FAST_TRAIN_ENV}),
             configure_logging=not quiet,
             logging_level="ERROR" if quiet else "INFO")


# Set by `ray job submit` in the job's driver: the job's config, its runtime environment inside.
JOB_CONFIG_VAR = "RAY_JOB_CONFIG_JSON_ENV_VAR"


def runtime_env_extension(env_vars: dict[str, str]) -> dict:
    """What this driver adds to its runtime environment. Inside a job (`ray job submit`), Ray
    merges it into the job's own (working_dir, pip/uv, env_vars): only env vars the job did not
    set are added, so the job's values win, and Ray never refuses the merge for a key both set
    ("Failed to merge the Job's runtime env ... because of a conflict")."""
    job = json.loads(os.environ.get(JOB_CONFIG_VAR) or "{}").get("runtime_env") or {}
    taken = set(job.get("env_vars") or {})
    return {"env_vars": {k: v for k, v in env_vars.items() if k not in taken}}


def trial_capacity(per_trial: dict[str, float], driver_cpu: float = 0.01) -> int:
    """How many trials fit at once, counting the trial driver's CPU share: more concurrent
    trials than this would leave some TorchTrainers waiting forever for their workers."""
    import ray

    total = ray.cluster_resources()
    need = {"CPU": per_trial.get("CPU", 0) + driver_cpu, "GPU": per_trial.get("GPU", 0)}
    fits = [math.floor(total.get(r, 0) / n + 1e-9) for r, n in need.items() if n > 0]
    return max(0, min(fits)) if fits else 1


def capacity_problem(per_trial: dict[str, float], workers: int, driver_cpu: float = 0.01) -> str:
    """Why not even one trial fits the cluster, naming the fields and a change that fits."""
    import ray

    total = ray.cluster_resources()
    cpus, gpus = total.get("CPU", 0), total.get("GPU", 0)
    if per_trial.get("GPU", 0) > gpus:
        return (f"train.workers × train.gpus_per_worker: a trial needs {per_trial['GPU']:g} GPUs, "
                f"the cluster has {gpus:g}: lower train.workers or train.gpus_per_worker")
    fits = math.floor(max(cpus - driver_cpu, 0) / workers * 100) / 100
    return (f"train.workers × train.cpus_per_worker: a trial needs {per_trial['CPU']:g} CPUs "
            f"plus {driver_cpu:g} for its driver, the cluster has {cpus:g}: lower "
            f"train.cpus_per_worker (to {fits:g} fits) or train.workers")


def _token_auth_on() -> None:
    """Token auth for this process and the cluster processes it starts. Ray caches its config at
    import, so the mode is refreshed through Ray's own helper, not only the env var."""
    os.environ["RAY_AUTH_MODE"] = "token"
    try:
        from ray._private.authentication.authentication_token_setup import _enable_token_auth
    except ImportError:  # pragma: no cover - a Ray without token auth
        return
    _enable_token_auth()
