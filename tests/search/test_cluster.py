"""Against a real two-node cluster started with `ray start` on this machine (stopped afterwards):
a head with no CPUs, as on a real cluster whose head only coordinates, and a worker node with
2 CPUs, where every trial must run. `sftmix run --address` joins it, and `ray job submit
--working-dir DIR -- sftmix run sweep.yaml` runs as a job on it (the sweep file relative to the
working dir, as users submit); both run their trials there and track them."""

import json
import subprocess
import time

import mlflow
import pytest
import yaml

from tests.services import BIN, ray_client_env, start_ray_cluster, stop_by_marker

pytestmark = pytest.mark.integration  # real Ray sweeps: the slow tier


@pytest.fixture(scope="module")
def cluster():
    cluster = start_ray_cluster(head_cpus=0, worker_cpus=[2])
    try:
        yield cluster
    finally:
        stop_by_marker(str(cluster["temp"]))


def _sweep(write_sweep, name):
    path = write_sweep()
    data = yaml.safe_load(path.read_text())
    data["name"] = name
    data["search"]["num_samples"] = 1
    path = path.with_name(f"{name}.yaml")
    path.write_text(yaml.safe_dump(data))
    return path, data


def _children(uri, name):
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=[f"sftmix-{name}"])
    return runs[runs["tags.sftmix.kind"] == "trial"]


def test_run_joins_a_running_cluster(cluster, write_sweep):
    path, data = _sweep(write_sweep, "joined")
    out = subprocess.run([str(BIN / "sftmix"), "run", str(path), "--address",
                          cluster["address"]], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    children = _children(data["tracking"]["uri"], "joined")
    assert len(children) == 1 and (children["status"] == "FINISHED").all()
    # the trial's processes ran on that cluster's worker node: its session holds their logs
    assert list((cluster["temp"] / "node1").glob("session_*/logs/worker-*"))


def _ray(cluster, *args, timeout=120):
    return subprocess.run([str(BIN / "ray"), *args[:2], "--address", cluster["jobs"],
                           *args[2:]], capture_output=True, text=True, env=ray_client_env(),
                          timeout=timeout)


def _submit(cluster, job_id: str, *args) -> None:
    # The job agent answers "No available agent" until the dashboard has registered it, which
    # takes a while after `ray start` on a busy machine: wait for a submission to be accepted.
    deadline, submitted = time.time() + 180, None
    while time.time() < deadline:
        submitted = _ray(cluster, "job", "submit", "--submission-id", job_id, "--no-wait",
                         *args)
        if submitted.returncode == 0:
            return
        time.sleep(3)
    raise AssertionError(submitted.stderr[-3000:])


def _wait_job(cluster, job_id: str) -> tuple[str, str]:
    status, deadline = "", time.time() + 600
    while time.time() < deadline:
        out = _ray(cluster, "job", "status", job_id, timeout=60)
        status = out.stdout + out.stderr  # e.g. "Job 'as-job' succeeded"
        if any(f"' {s}" in status for s in ("succeeded", "failed", "stopped")):
            break
        time.sleep(3)
    return status, _ray(cluster, "job", "logs", job_id, timeout=60).stdout


def test_ray_job_submit_with_a_working_dir_runs_a_sweep_on_the_worker_node(
        cluster, write_sweep, tmp_path):
    """The job's runtime environment (its working_dir, its env_vars) reaches every task of the
    sweep, extended with sftmix's own settings where the job did not set them: replacing it
    had Ray delete the working dir under the running driver."""
    path, data = _sweep(write_sweep, "as_job")
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    data["search"]["space"] = "space.yaml"  # relative: resolved in the job's working dir
    (job_dir / "sweep.yaml").write_text(yaml.safe_dump(data))
    (job_dir / "space.yaml").write_text((tmp_path / "space.yaml").read_text())
    job_env = {"SFTMIX_JOB_MARK": "kept", "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2"}
    _submit(cluster, "as-job", "--working-dir", str(job_dir),
            "--runtime-env-json", json.dumps({"env_vars": job_env}),
            "--", str(BIN / "sftmix"), "run", "sweep.yaml")
    status, logs = _wait_job(cluster, "as-job")
    assert "Job 'as-job' succeeded" in status, status + logs[-3000:]
    assert "Pareto front: 1 of 1 trials" in logs  # the sweep's own answer, from the job
    children = _children(data["tracking"]["uri"], "as_job")
    assert len(children) == 1 and (children["status"] == "FINISHED").all()

    jobs = json.loads(_ray(cluster, "list", "jobs", "--format", "json").stdout)
    job_id = next(j["job_id"] for j in jobs if j.get("submission_id") == "as-job")
    tasks = [t for t in json.loads(_ray(cluster, "list", "tasks", "--detail", "--format",
                                        "json", "--limit", "10000").stdout)
             if t["job_id"] == job_id]
    envs = [json.loads(t["runtime_env_info"]["serialized_runtime_env"]) for t in tasks
            if t.get("runtime_env_info")]
    trial_envs = [e for e in envs if "RAY_TRAIN_METRICS_ENABLED" in e.get("env_vars", {})]
    assert trial_envs, envs[:3]  # the sweep's tasks carry sftmix's own settings ...
    for env in trial_envs:  # ... and the job's working dir and env vars, the job's value first
        assert env["working_dir"].startswith("gcs://"), env
        assert env["env_vars"]["SFTMIX_JOB_MARK"] == "kept"
        assert env["env_vars"]["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] == "0.2"
    # every trial ran on the worker node: the head has no CPU to give one
    nodes = json.loads(_ray(cluster, "list", "nodes", "--format", "json").stdout)
    head = [n["node_id"] for n in nodes if n["is_head_node"]]
    placed = {t["node_id"] for t in tasks if t.get("func_or_class_name", "").startswith(
        ("ImplicitFunc", "RayTrainWorker"))}
    assert placed and not placed & set(head), (placed, head)
