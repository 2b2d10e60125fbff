"""Against a real cluster started with `ray start --head` on this machine (stopped afterwards):
`sftmix run --address` joins it, and `ray job submit -- sftmix run` runs as a job on it; both run
their trials there and track them."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import pytest
import yaml

pytestmark = pytest.mark.integration  # real Ray sweeps: the slow tier

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    # Its own temp dir, so stopping it kills only its processes, not this test process's Ray.
    temp = Path(tempfile.mkdtemp(prefix="sftmix-cluster-", dir="/tmp"))
    port, dashboard, agent = _free_port(), _free_port(), _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    # The dashboard is what `ray job submit` talks to; its node agent runs the jobs. The agent's
    # default port (52365) belongs to whichever Ray on this machine took it first (this test
    # process's own local Ray, say), and a second agent on it never registers: "No available
    # agent to submit job".
    subprocess.run([str(BIN / "ray"), "start", "--head", f"--port={port}", "--num-cpus=2",
                    f"--temp-dir={temp}", "--include-dashboard=true",
                    "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
                    f"--dashboard-agent-listen-port={agent}", "--disable-usage-stats"],
                   check=True, capture_output=True, env=env, timeout=120)
    try:
        yield {"address": f"127.0.0.1:{port}", "temp": temp,
               "jobs": f"http://127.0.0.1:{dashboard}"}
    finally:
        _stop(temp)


def _stop(temp: Path) -> None:
    """Kill this cluster's processes only (they carry its temp dir in their arguments), until
    none is left: `ray stop` would take every Ray on the machine down with it."""
    for _ in range(10):
        left = 0  # processes may spawn more while we kill: sweep until none is left
        # -ww: never cut the arguments (ps cuts them to $COLUMNS, which a test runner may set)
        for line in subprocess.run(["ps", "-ww", "-eo", "pid=,args="], capture_output=True,
                                   text=True).stdout.splitlines():
            pid, _, args = line.strip().partition(" ")
            if str(temp) in args:
                left += 1
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if not left:
            break
        time.sleep(0.5)
    shutil.rmtree(temp, ignore_errors=True)


def _sweep(write_sweep, name):
    path = write_sweep()
    data = yaml.safe_load(path.read_text())
    data["name"] = name
    data["search"]["num_samples"] = 1
    path = path.with_name(f"{name}.yaml")
    path.write_text(yaml.safe_dump(data))
    return path, data["tracking"]["uri"]


def _children(uri, name):
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=[f"sftmix-{name}"])
    return runs[runs["tags.sftmix.kind"] == "trial"]


def test_run_joins_a_running_cluster(cluster, write_sweep):
    path, uri = _sweep(write_sweep, "joined")
    out = subprocess.run([str(BIN / "sftmix"), "run", str(path), "--address",
                          cluster["address"]], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    children = _children(uri, "joined")
    assert len(children) == 1 and (children["status"] == "FINISHED").all()
    # the trial's processes ran on that cluster: its session holds their worker logs
    assert list(cluster["temp"].glob("session_*/logs/worker-*"))


def _job_env() -> dict:
    env = {**os.environ}
    if (Path.home() / ".ray" / "auth_token").is_file():
        env.setdefault("RAY_AUTH_MODE", "token")  # `ray start` enabled token auth with it
    return env


def test_ray_job_submit_runs_a_sweep_on_the_cluster(cluster, write_sweep):
    path, uri = _sweep(write_sweep, "as_job")
    ray = str(BIN / "ray")
    # The job agent answers "No available agent" until the dashboard has registered it, which
    # takes a while after `ray start` on a busy machine: wait for a submission to be accepted.
    deadline, submitted = time.time() + 180, None
    while time.time() < deadline:
        submitted = subprocess.run(
            [ray, "job", "submit", "--address", cluster["jobs"], "--submission-id", "as-job",
             "--no-wait", "--", str(BIN / "sftmix"), "run", str(path)],
            capture_output=True, text=True, env=_job_env(), timeout=120)
        if submitted.returncode == 0:
            break
        time.sleep(3)
    assert submitted is not None and submitted.returncode == 0, submitted.stderr[-3000:]
    status = ""
    deadline = time.time() + 600
    while time.time() < deadline:
        out = subprocess.run([ray, "job", "status", "--address", cluster["jobs"], "as-job"],
                             capture_output=True, text=True, env=_job_env(), timeout=60)
        status = out.stdout + out.stderr  # e.g. "Job 'as-job' succeeded"
        if any(f"' {s}" in status for s in ("succeeded", "failed", "stopped")):
            break
        time.sleep(3)
    logs = subprocess.run([ray, "job", "logs", "--address", cluster["jobs"], "as-job"],
                          capture_output=True, text=True, env=_job_env(), timeout=60).stdout
    assert "Job 'as-job' succeeded" in status, status + logs[-3000:]
    assert "Pareto front: 1 of 1 trials" in logs  # the sweep's own answer, from the job
    children = _children(uri, "as_job")
    assert len(children) == 1 and (children["status"] == "FINISHED").all()
