from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sftmix_ray.cli import app
from sftmix_ray.config import ConfigError, load_sweep

from ..conftest import ROOT


@pytest.mark.parametrize("path", sorted((ROOT / "sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_every_sweep_file_validates(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    sweep, space = load_sweep(path)
    assert set(space.domains) <= set(sweep.domains)


@pytest.mark.parametrize("path", sorted((ROOT / "search_spaces").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_search_space_validates(path):
    from sftmix_ray.config import SearchSpace, read_yaml, validate_data

    space = validate_data(SearchSpace, read_yaml(path), str(path))
    assert space.strategies


def _quickstart_copy(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load((ROOT / "sweeps" / "quickstart.yaml").read_text())
    data["search"]["space"] = str(ROOT / data["search"]["space"])
    mutate(data)
    out = tmp_path / "bad.yaml"
    out.write_text(yaml.safe_dump(data))
    return out


def test_misspelled_key_names_it_with_did_you_mean(tmp_path):
    path = _quickstart_copy(tmp_path, lambda d: d["train"].update(learning_rat=1e-3))
    with pytest.raises(ConfigError) as exc:
        load_sweep(path)
    assert exc.value.problems == ["train.learning_rat: unknown key; did you mean 'lr'?"] or \
        any("train.learning_rat" in p and "unknown key" in p for p in exc.value.problems)


def test_all_problems_are_reported_together(tmp_path):
    def mutate(d):
        d["train"]["epocs"] = 2
        d["train"]["lr"] = -1
        d["domains"]["math"]["formt"] = "gsm8k"
        del d["name"]

    with pytest.raises(ConfigError) as exc:
        load_sweep(_quickstart_copy(tmp_path, mutate))
    text = "\n".join(exc.value.problems)
    assert "train.epocs: unknown key; did you mean 'epochs'?" in text
    assert "train.lr:" in text and "greater than 0" in text
    assert "domains.math.formt: unknown key; did you mean 'format'?" in text
    assert "name: required field is missing" in text
    assert len(exc.value.problems) == 4


def test_space_problems_are_checked_against_the_sweep(tmp_path, write_sweep):
    path = write_sweep(space={"domains": ["math"], "amount": {"low": 5, "high": 1},
                              "strategies": {"multi_task": {}}})
    with pytest.raises(ConfigError) as exc:
        load_sweep(path)
    assert any("amount: low (5) is greater than high (1)" in p for p in exc.value.problems)
    path = write_sweep(space={"domains": ["math", "poetry"], "amount": {"low": 5, "high": 10},
                              "specialized": ["math"], "strategies": {"dmt": {}}})
    with pytest.raises(ConfigError) as exc:
        load_sweep(path)
    assert any("dmt needs its k values" in p for p in exc.value.problems)
    path = write_sweep(space={"domains": ["math", "poetry"], "amount": {"low": 5, "high": 10},
                              "strategies": {"multi_task": {}}})
    with pytest.raises(ConfigError) as exc:
        load_sweep(path)
    assert any("'poetry' is not declared under 'domains'" in p for p in exc.value.problems)


def test_unknown_strategy_is_named(tmp_path, write_sweep):
    path = write_sweep(space={"domains": ["math"], "amount": {"low": 5, "high": 10},
                              "strategies": {"multitask": {}}})
    with pytest.raises(ConfigError) as exc:
        load_sweep(path)
    assert any("strategies.multitask" in p for p in exc.value.problems)


def test_cli_validate_exits_nonzero_naming_the_key(tmp_path):
    path = _quickstart_copy(tmp_path, lambda d: d["search"].update(num_sample=3))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "search.num_sample" in result.output and "num_samples" in result.output


def test_cli_validate_accepts_the_quickstart(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, ["validate", "sweeps/quickstart.yaml"])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output


def test_seeds_need_a_grid(write_sweep):
    path = write_sweep()
    data = yaml.safe_load(path.read_text())
    data["search"]["seeds"] = [0, 1]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="seeds: repeating points over seeds needs algorithm"):
        load_sweep(path)


@pytest.mark.parametrize("objectives,message", [
    ({"math": "max", "code": "max"}, "pruning compares trials on one objective, and this sweep "
                                     "has 2"),
    ({"train_tokens": "min"}, "must be an ability evaluated during training"),
])
def test_pruning_needs_one_ability_objective(tmp_path, objectives, message):
    def mutate(d):
        d["search"].update(objectives=objectives, prune={"grace_period": 1})

    with pytest.raises(ConfigError) as exc:
        load_sweep(_quickstart_copy(tmp_path, mutate))
    assert any(p.startswith("search.prune: ") and message in p for p in exc.value.problems), \
        exc.value.problems
    ok = _quickstart_copy(tmp_path, lambda d: d["search"].update(
        objectives={"math": "max"}, prune={"grace_period": 1, "reduction_factor": 3}))
    assert load_sweep(ok)[0].search.prune.reduction_factor == 3


def test_object_storage_needs_a_cache_dir(tmp_path):
    path = _quickstart_copy(tmp_path, lambda d: d.update(storage="s3://bucket/runs"))
    with pytest.raises(ConfigError) as exc:
        load_sweep(path)
    assert any("cache_dir: storage 's3://bucket/runs' is a URI" in p for p in exc.value.problems)
    ok = _quickstart_copy(tmp_path, lambda d: d.update(storage="s3://bucket/runs",
                                                        cache_dir=str(tmp_path / "c")))
    from sftmix_ray.storage import experiment_location, state_dir

    sweep = load_sweep(ok)[0]
    assert experiment_location(sweep.storage, sweep.name) == "s3://bucket/runs/quickstart"
    assert state_dir(sweep.storage, sweep.cache_dir, sweep.name) == tmp_path / "c" / "sweeps" / \
        "quickstart"
