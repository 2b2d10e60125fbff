"""A sweep whose storage is an S3 URI, against a real S3 endpoint on loopback (moto's server,
spoken to over HTTP by pyarrow's S3 client, as Tune and Train speak to AWS): the Tune experiment
and the Train checkpoints land in the bucket, the caches in `cache_dir`, and MLflow gets the
evaluation files fetched back from the bucket."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import yaml

pytestmark = pytest.mark.integration  # real Ray sweeps: the slow tier

BIN = Path(sys.executable).parent
BUCKET = "sftmix-test"


@pytest.fixture(scope="module")
def s3():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    import boto3

    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    for _ in range(100):
        try:
            client.create_bucket(Bucket=BUCKET)
            break
        except Exception:  # the server is still starting
            time.sleep(0.1)
    try:
        yield env, client
    finally:
        server.kill()
        server.wait()


def test_a_sweep_stores_its_experiment_in_s3(s3, write_sweep, tmp_path):
    env, client = s3
    path = write_sweep()
    data = yaml.safe_load(path.read_text())
    data.update(name="on_s3", storage=f"s3://{BUCKET}/runs", cache_dir=str(tmp_path / "cache"))
    data["search"]["num_samples"] = 1
    path.write_text(yaml.safe_dump(data))
    run = [str(BIN / "sftmix"), "run", str(path)]
    out = subprocess.run(run, capture_output=True, text=True, timeout=600,
                         env={**os.environ, **env})
    assert out.returncode == 0, out.stderr[-3000:]

    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="runs/on_s3/")
            .get("Contents", [])]
    assert any(k.endswith("tuner.pkl") for k in keys)  # the Tune experiment
    assert any("/model/config.json" in k for k in keys)  # the trial's final weights
    assert list((tmp_path / "cache").rglob("ids.npy"))  # the token cache stays on a filesystem
    assert (tmp_path / "cache" / "sweeps" / "on_s3" / "optuna.journal").is_file()

    mlflow.set_tracking_uri(data["tracking"]["uri"])
    runs = mlflow.search_runs(experiment_names=["sftmix-on_s3"])
    trial = runs[runs["tags.sftmix.kind"] == "trial"].iloc[0]
    assert trial["status"] == "FINISHED"
    assert trial["tags.sftmix.model_path"].startswith(f"s3://{BUCKET}/runs/on_s3/")
    evaluation = mlflow.artifacts.list_artifacts(run_id=trial["run_id"],
                                                 artifact_path="evaluation")
    assert {Path(a.path).name for a in evaluation} >= {"eval_records.json", "metrics.json"}

    # The bucket cannot move an old run aside: a second run of that name is refused, losing
    # nothing, and pointed at `sftmix resume`.
    again = subprocess.run(run, capture_output=True, text=True, timeout=600,
                           env={**os.environ, **env})
    assert again.returncode == 2
    assert "storage already holds a sweep 'on_s3'" in again.stderr
    assert "sftmix resume" in again.stderr
