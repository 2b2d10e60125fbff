"""What the driver adds to a Ray job's runtime environment: its own env vars, never one the job
set (the job's value wins, and Ray would refuse to merge a key both set)."""

import json

from sftmix_ray.search.runtime import JOB_CONFIG_VAR, runtime_env_extension


def test_outside_a_job_the_driver_sets_its_env_vars(monkeypatch):
    monkeypatch.delenv(JOB_CONFIG_VAR, raising=False)
    assert runtime_env_extension({"A": "1", "B": "2"}) == {"env_vars": {"A": "1", "B": "2"}}


def test_inside_a_job_only_keys_the_job_left_unset_are_added(monkeypatch):
    job = {"runtime_env": {"working_dir": "gcs://_ray_pkg_x.zip", "pip": ["six"],
                           "env_vars": {"A": "job"}}, "metadata": {}}
    monkeypatch.setenv(JOB_CONFIG_VAR, json.dumps(job))
    extension = runtime_env_extension({"A": "mine", "B": "2"})
    # only env vars: Ray merges them into the job's environment, which keeps its working_dir
    # and pip; and the merge Ray itself makes accepts it
    assert extension == {"env_vars": {"B": "2"}}
    from ray.runtime_env.runtime_env import _merge_runtime_env

    merged = _merge_runtime_env(job["runtime_env"], extension)
    assert merged == {"working_dir": "gcs://_ray_pkg_x.zip", "pip": ["six"],
                      "env_vars": {"A": "job", "B": "2"}}


def test_a_job_without_a_runtime_env(monkeypatch):
    monkeypatch.setenv(JOB_CONFIG_VAR, json.dumps({"runtime_env": None}))
    assert runtime_env_extension({"B": "2"}) == {"env_vars": {"B": "2"}}
