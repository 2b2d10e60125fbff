"""Config errors before anything starts: each class refused by `sftmix validate` and
`sftmix run` with exit 2, the field named, no traceback, and nothing launched or recorded."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from sftmix_ray.cli import app

COUNTS_SPACE = {"domains": ["math", "code", "general"], "specialized": ["math", "code"],
                "counts": {"grid": [{"math": 50, "code": 50}]},
                "strategies": {"multi_task": {}}}


def _refused(path, *args, command="validate") -> str:
    out = CliRunner().invoke(app, [command, str(path), *args])
    assert out.exit_code == 2, out.output
    assert "Traceback" not in out.output and "(top level)" not in out.output
    return " ".join(out.output.split())  # the console wraps long lines


def _edit(path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize("insert,field", [
    ("train:\n  lr: 0.1\n", "train: duplicate key"),
    ("search:\n  seed: 1\n  seed: 2\n", "search.seed: duplicate key"),
])
def test_a_key_given_twice_is_refused_with_its_path_and_lines(write_sweep, insert, field):
    path = write_sweep()
    path.write_text(path.read_text() + insert)
    assert field in _refused(path)


def test_a_duplicate_inside_a_list_names_the_item(write_sweep):
    path = write_sweep()
    path.write_text(path.read_text().replace(
        "search:\n", "search:\n  warm_start:\n  - {strategy: dmt, k: 0.25, k: 1.0}\n", 1))
    assert "search.warm_start[0].k: duplicate key" in _refused(path)


@pytest.mark.parametrize("objectives,constraints,expected", [
    ({"mathh": "max"}, None, "search.objectives: 'mathh' is not a metric a trial reports; "
                             "did you mean 'math'?"),
    ({"math": "max", "train_los": "min"}, {"math": 0.1},
     "search.objectives: 'train_los' is not a metric a trial reports; did you mean 'train_loss'"),
    ({"code_pass_at_5": "max"}, None, "search.objectives: 'code_pass_at_5'"),
])
def test_objectives_and_constraints_must_be_metrics_trials_report(write_sweep, objectives,
                                                                  constraints, expected):
    path = write_sweep()
    _edit(path, lambda d: d["search"].update(objectives=objectives,
                                             **({"constraints": constraints}
                                                if constraints else {})))
    assert expected in _refused(path)


@pytest.mark.parametrize("field,value,expected", [
    ("tracking", {"uri": "mlruns"}, "tracking.uri: 'mlruns' is not a URI of a supported"),
    ("tracking", {"uri": "ftp://host/x"}, "tracking.uri: 'ftp://host/x' is not a URI"),
    ("judge", {"base_url": "localhost:8000/v1", "model": "j"},
     "evaluate.judge.base_url: 'localhost:8000/v1' is not a URI"),
    ("judge", {"base_url": "http:///v1", "model": "j"}, "evaluate.judge.base_url: 'http:///v1' "
                                                        "names no host"),
])
def test_addresses_must_be_uris_of_a_supported_scheme(write_sweep, field, value, expected):
    path = write_sweep()
    if field == "tracking":
        _edit(path, lambda d: d.update(tracking=value))
    else:
        _edit(path, lambda d: d["evaluate"].update(judge=value))
    assert expected in _refused(path)


@pytest.mark.parametrize("value", ["db.internal:5432/optuna", "redis://db/0", "optuna.db"])
def test_a_study_storage_must_be_an_rdb_url(write_sweep, value):
    path = write_sweep()
    _edit(path, lambda d: d["search"].update(study_storage=value))
    assert f"search.study_storage: {value!r} is not a URI of a supported scheme" in \
        _refused(path)


def test_a_study_storage_with_a_driver_is_accepted(write_sweep):
    from sftmix_ray.config import load_sweep

    path = write_sweep()
    _edit(path, lambda d: d["search"].update(
        study_storage="postgresql+psycopg://optuna@db.internal:5432/optuna"))
    assert load_sweep(path)[0].search.study_storage.startswith("postgresql+psycopg://")


@pytest.mark.parametrize("field", ["storage", "cache_dir"])
def test_storage_that_is_an_existing_file_is_refused(write_sweep, tmp_path, field):
    target = tmp_path / "a-file"
    target.write_text("not a directory")
    path = write_sweep()
    _edit(path, lambda d: d.update({field: str(target)}))
    assert f"{field}: '{target}' is a file" in _refused(path)
    assert target.read_text() == "not a directory"  # nothing lost


def test_mixtures_larger_than_a_lab_pool_are_refused_unless_upsampled(write_sweep):
    path = write_sweep(space={**COUNTS_SPACE, "counts": {"grid": [{"math": 500}]}})
    assert ("search.space.counts: asks domains.math for up to 500 samples, and it has 200 "
            "(its lab pool)") in _refused(path)
    simplex = {**COUNTS_SPACE, "counts": None, "amount": {"low": 100, "high": 300}}
    path = write_sweep(space={k: v for k, v in simplex.items() if v is not None})
    text = _refused(path)
    assert "search.space.amount (a simplex ratio may give it all to one domain): asks " \
           "domains.code for up to 300" in text
    _edit(path, lambda d: [d["domains"][n].update(upsample=True) for n in d["domains"]])
    assert CliRunner().invoke(app, ["validate", str(path)]).exit_code == 0


def test_a_local_file_too_small_for_the_mixture_is_refused_before_running(write_sweep, tmp_path):
    rows = tmp_path / "math.jsonl"
    rows.write_text("".join(json.dumps({"question": f"q{i}", "answer": f"a\n#### {i}"}) + "\n"
                            for i in range(30)))
    path = write_sweep(space=COUNTS_SPACE)
    _edit(path, lambda d: d["domains"].update(math={"source": str(rows), "format": "gsm8k"}))
    text = _refused(path, command="run")
    assert "asks domains.math for up to 50 samples, and it has 30 (rows in math.jsonl)" in text
    assert not (tmp_path / "runs").exists() and not (tmp_path / "mlflow.db").exists()


def test_a_dataset_sized_only_when_prepared_is_refused_before_ray_and_mlflow(write_sweep,
                                                                          tmp_path):
    import ray

    rows = [{"instruction": f"write f{i}", "input": "", "output": f"def f{i}(): pass"}
            for i in range(30)]
    (tmp_path / "code-ds").mkdir()  # a dataset directory, read as the hub reads one
    (tmp_path / "code-ds" / "train.jsonl").write_text("".join(json.dumps(r) + "\n"
                                                              for r in rows))
    path = write_sweep(space=COUNTS_SPACE)
    _edit(path, lambda d: d["domains"].update(code={"source": str(tmp_path / "code-ds"),
                                                    "format": "alpaca"}))
    ray_before = ray.is_initialized()
    text = _refused(path, command="run")
    assert "asks domains.code for up to 50 samples, and it has 30 (usable samples after " \
           "preparation)" in text
    assert ray.is_initialized() == ray_before and not (tmp_path / "mlflow.db").exists()
