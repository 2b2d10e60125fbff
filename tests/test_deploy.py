"""The cluster recipes in deploy/, checked for what a deployment needs: the sweep they run
validates (with their command-line overrides), the head gives no CPU to trials, one trial fits on
a GPU worker node and `search.max_concurrent` trials fit on the workers at most, every node runs
the same pinned image at the Ray version sftmix pins, the storage is shared by every node, the
tracking server and study storage come from the environment, and every secret comes from a
secret store, never written in the file."""

import re
import shlex
from pathlib import Path

import pytest
import ray
import yaml

from sftmix_ray.config import load_sweep
from sftmix_ray.config.checks import STUDY_SCHEMES
from sftmix_ray.search.tuner import TRIAL_DRIVER_CPU

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SECRET_NAMES = ("PASSWORD", "TOKEN", "KEY", "SECRET")
ENV = {"MLFLOW_TRACKING_URI": "http://mlflow:5000",
       "SFTMIX_STUDY_STORAGE": "postgresql://optuna@postgres:5432/optuna"}


def _sweep_of(command: str, env: dict[str, str]):
    """The sweep a `sftmix run FILE --opt VALUE…` command runs, with its overrides applied and
    `$VARS` taken from `env` (as the node's shell would)."""
    args = shlex.split(re.sub(r"\$(\w+)", lambda m: env[m.group(1)], command))
    assert args[:2] == ["sftmix", "run"], args
    path, options = ROOT / args[2], dict(zip(args[3::2], args[4::2]))
    assert path.is_file(), path
    fields = {"--storage": "storage", "--tracking-uri": "tracking.uri",
              "--study-storage": "search.study_storage", "--cache-dir": "cache_dir"}
    assert set(options) <= set(fields), options
    return load_sweep(path, {fields[k]: v for k, v in options.items()})  # raises if invalid


def _trial_fits(sweep, cpus: float, gpus: int) -> bool:
    t = sweep.train
    return t.workers * t.gpus_per_worker <= gpus and \
        t.workers * t.cpus_per_worker + TRIAL_DRIVER_CPU <= cpus


def _has_password(url: str) -> bool:
    return re.search(r"://[^/@:]*:[^/@]*@", url) is not None


def _ray_version() -> str:
    return ".".join(ray.__version__.split(".")[:2])


# ------------------------------------------------------------------ KubeRay


@pytest.fixture(scope="module")
def rayjob():
    return yaml.safe_load((DEPLOY / "kuberay" / "rayjob.yaml").read_text())


def _env(container) -> dict:
    return {e["name"]: e for e in container.get("env", [])}


def test_the_rayjob_runs_a_real_sweep_that_validates(rayjob):
    assert rayjob["apiVersion"] == "ray.io/v1" and rayjob["kind"] == "RayJob"
    spec = rayjob["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    sweep, space = _sweep_of(spec["entrypoint"], ENV)
    assert sweep.name.endswith("_real") and sweep.search.algorithm != "grid"
    assert sweep.train.gpus_per_worker >= 1
    assert sweep.search.study_storage.split(":")[0].split("+")[0] in STUDY_SCHEMES
    assert sweep.tracking.uri.startswith("http")
    # the working dir the job ships is the image's copy of the repository
    assert yaml.safe_load(spec["runtimeEnvYAML"])["working_dir"] == "/home/ray/sftmix"


def test_the_rayjob_cluster_has_a_cpu_less_head_and_gpu_workers_that_fit(rayjob):
    cluster = rayjob["spec"]["rayClusterSpec"]
    assert cluster["rayVersion"].startswith(_ray_version())
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    sweep, _ = _sweep_of(rayjob["spec"]["entrypoint"], ENV)
    workers = cluster["workerGroupSpecs"]
    assert workers
    capacity = 0
    for group in workers:
        (container,) = group["template"]["spec"]["containers"]
        limits = container["resources"]["limits"]
        gpus, cpus = int(limits["nvidia.com/gpu"]), float(limits["cpu"])
        assert container["resources"]["requests"]["nvidia.com/gpu"] == limits["nvidia.com/gpu"]
        assert _trial_fits(sweep, cpus, gpus), (group["groupName"], cpus, gpus)
        capacity += group["maxReplicas"] * min(
            gpus // (sweep.train.workers * sweep.train.gpus_per_worker),
            int((cpus - TRIAL_DRIVER_CPU) // (sweep.train.workers * sweep.train.cpus_per_worker)))
    assert capacity >= sweep.search.max_concurrent


def test_every_rayjob_node_has_the_image_the_env_the_secrets_and_the_shared_volume(rayjob):
    cluster = rayjob["spec"]["rayClusterSpec"]
    sweep, _ = _sweep_of(rayjob["spec"]["entrypoint"], ENV)
    pods = [cluster["headGroupSpec"]["template"]["spec"]] + \
        [g["template"]["spec"] for g in cluster["workerGroupSpecs"]]
    images = {c["image"] for p in pods for c in p["containers"]}
    assert len(images) == 1
    image = images.pop()
    assert ":" in image and not image.endswith(":latest")  # pinned, the same everywhere
    for pod in pods:
        (container,) = pod["containers"]
        env = _env(container)
        assert {"MLFLOW_TRACKING_URI", "SFTMIX_STUDY_STORAGE", "PGPASSWORD"} <= set(env)
        assert not _has_password(env["SFTMIX_STUDY_STORAGE"]["value"])
        for name, entry in env.items():
            if any(part in name for part in SECRET_NAMES):
                assert "value" not in entry and "secretKeyRef" in entry["valueFrom"], name
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
        mounts = {m["mountPath"]: claims[m["name"]] for m in container["volumeMounts"]}
        assert any(sweep.storage.startswith(path + "/") for path in mounts), \
            (sweep.storage, mounts)  # the Tune experiment on the volume every node mounts


# ------------------------------------------------------------------ ray up


@pytest.fixture(scope="module")
def ray_up():
    return yaml.safe_load((DEPLOY / "ray-up" / "cluster.yaml").read_text())


def _submitted(ray_up_path: Path) -> str:
    """The `sftmix run …` command the file's own instructions submit with `ray job submit`."""
    lines = [ln.lstrip("# ").rstrip("\\ ").strip() for ln in
             ray_up_path.read_text().splitlines() if ln.startswith("#")]
    text = " ".join(lines)
    return re.search(r"ray job submit .*? -- (sftmix run .*?)(?:\s+ray down|$)", text).group(1)


def test_ray_up_runs_a_real_sweep_on_a_cpu_less_head_and_gpu_workers(ray_up):
    path = DEPLOY / "ray-up" / "cluster.yaml"
    run_options = " ".join(ray_up["docker"]["run_options"])
    env = dict(re.findall(r"--env (\w+)=(\S+)", run_options))
    sweep, _ = _sweep_of(_submitted(path).replace("'", ""), env)
    assert sweep.name.endswith("_real") and sweep.storage.startswith("s3://")
    assert sweep.cache_dir.startswith("/shared/") and "--volume /shared:/shared" in run_options
    assert "--env-file" in run_options  # secrets from the node's secret file, not this one
    assert not re.search(r"(PASSWORD|TOKEN|KEY|SECRET)\w*=", run_options)
    assert not _has_password(sweep.search.study_storage)

    head = ray_up["available_node_types"][ray_up["head_node_type"]]
    assert head["resources"]["CPU"] == 0
    assert any("--num-cpus=0" in c for c in ray_up["head_start_ray_commands"])
    workers = [t for n, t in ray_up["available_node_types"].items()
               if n != ray_up["head_node_type"]]
    assert all(_trial_fits(sweep, t["resources"]["CPU"], t["resources"]["GPU"])
               for t in workers)
    assert sum(t["max_workers"] for t in workers) >= sweep.search.max_concurrent
    assert ray_up["docker"]["image"].split(":")[-1] != "latest"


def test_the_image_pins_the_ray_version_sftmix_pins():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    base = re.search(r"^FROM rayproject/ray:(\d+\.\d+)\.\d+", dockerfile, re.M)
    assert base and base.group(1) == _ray_version()
    assert "[team]" in dockerfile
