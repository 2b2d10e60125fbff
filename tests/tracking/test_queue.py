"""The driver's MLflow write queue against a real `mlflow server` that is killed and started
again: writes made while it is down wait, in order, on disk (a new driver finds them), with one
warning; once it is back they are delivered exactly once; a write the server refuses is dropped
with a warning instead of blocking the queue forever."""

import os
import signal
import subprocess

import mlflow
import pytest

from sftmix_ray.tracking.queue import TrackingQueue
from sftmix_ray.tracking.sweep import SweepTracker
from tests.services import BIN, SERVER_WITHOUT_JOBS, free_port, port_open, wait_until

pytestmark = pytest.mark.integration  # starts a real tracking server


class Server:
    def __init__(self, tmp_path):
        self.port, self.db = free_port(), tmp_path / "mlflow.db"
        self.uri, self.proc, self.tmp = f"http://127.0.0.1:{self.port}", None, tmp_path

    def start(self):
        self.proc = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{self.db}",
             "--artifacts-destination", str(self.tmp / "artifacts"), "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "1"],
            env={**os.environ, **SERVER_WITHOUT_JOBS}, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until(lambda: mlflow.MlflowClient(self.uri).search_experiments(), 300,
                   "mlflow server", interval=1)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        wait_until(lambda: not port_open(self.port), 60, "the server's port closed")


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path)
    s.start()
    try:
        yield s
    finally:
        s.stop()


def test_writes_wait_out_an_outage_on_disk_and_arrive_once(server, tmp_path):
    tracker = SweepTracker(server.uri, "queue-test", "sweep", tags={})
    journal, said = tmp_path / "state" / "mlflow_queue.jsonl", []
    queue = TrackingQueue(tracker, journal, notify=said.append)
    queue.submit("open", "t1", params={"amount": "60", "strategy": "dmt"})
    run_id = queue.runs["t1"]  # the server was up: delivered at once
    assert not journal.exists()

    server.stop()
    records = tmp_path / "records.json"
    records.write_text('{"score": 1}')
    queue.submit("batch", "t1", metrics=[("math", 0.25, 1_000, 0)], tags={"k": "v"})
    queue.submit("artifact", "t1", path=str(records), artifact_path="evaluation")
    records.unlink()  # a temporary file, gone before the server is back: the queue kept a copy
    queue.submit("end", "t1", status="FINISHED", end_time=2_000)
    assert [op["op"] for op in queue.pending] == ["batch", "artifact", "end"]
    assert len(said) == 1 and "does not answer" in said[0]  # one warning per outage
    assert journal.is_file()

    # the driver dies; a new one finds the same writes, in the same order, on disk
    again = TrackingQueue(tracker, journal, notify=said.append)
    assert again.pending == queue.pending
    assert not again.flush(force=True)  # still down

    server.start()
    assert again.drain(wait_s=120, every_s=1)
    assert "answers again" in said[-1]
    assert not journal.exists() and not again.spool.exists()
    run = mlflow.MlflowClient(server.uri).get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.metrics == {"math": 0.25}
    assert run.data.tags["k"] == "v" and run.data.params["strategy"] == "dmt"
    mlflow.set_tracking_uri(server.uri)
    assert mlflow.artifacts.load_dict(f"runs:/{run_id}/evaluation/records.json") == \
        {"score": 1}

    # a replayed opening finds the trial's run: no second run for the same trial
    again.submit("open", "t1", params={"amount": "60", "strategy": "dmt"})
    assert again.runs["t1"] == run_id
    children = mlflow.MlflowClient(server.uri).search_runs([tracker.experiment_id])
    assert len([r for r in children if r.info.run_id != tracker.parent_id]) == 1


def test_a_refused_write_is_dropped_with_a_warning_and_the_rest_goes_on(server, tmp_path):
    tracker = SweepTracker(server.uri, "queue-refused", "sweep", tags={})
    said = []
    queue = TrackingQueue(tracker, tmp_path / "q.jsonl", notify=said.append)
    queue.submit("open", "t1", params={"amount": "60"})
    # MLflow refuses to change a logged param: replaying cannot help
    queue.submit("open", "t1", params={"amount": "120"})
    queue.submit("end", "t1", status="FINISHED")
    assert not queue.pending and len(queue.refused) == 1
    assert "refused" in said[0] and "amount" in said[0]
    assert mlflow.MlflowClient(server.uri).get_run(queue.runs["t1"]).info.status == "FINISHED"
