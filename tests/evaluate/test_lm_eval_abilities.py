"""Abilities named by the user: lm-eval tasks refused at `validate` (exit 2) when the package is
missing or the task unknown, names that would collide refused at load, objectives over them (and
over the held-out loss) accepted, and their intervals from lm-eval's per-document records."""

import importlib.util

import pytest
from typer.testing import CliRunner

from sftmix_ray.cli import app
from sftmix_ray.config import EvaluateConfig, load_sweep
from sftmix_ray.config.load import ConfigError
from sftmix_ray.evaluate.intervals import score_intervals
from sftmix_ray.train.heldout import heldout_metrics

LAB_MATH = {"task": "sftmix_lab_math", "metric": "exact_match,strict-match"}
OBJECTIVES = {"math": "max", "labmath": "max", "loss_code": "min"}


def _validate(path):
    """`sftmix validate`, with its output's lines (wrapped by the console) joined again."""
    result = CliRunner().invoke(app, ["validate", str(path)])
    return result.exit_code, " ".join(result.output.split())


def test_a_sweep_with_an_lm_eval_ability_and_a_loss_objective_validates(write_sweep):
    path = write_sweep(evaluate={"abilities": {"labmath": LAB_MATH}})
    sweep, _ = load_sweep(path, {"search.objectives": OBJECTIVES,
                                 "search.constraints": {"loss_code": 5.0}})
    assert set(sweep.search.objectives) == set(OBJECTIVES)
    code, output = _validate(path)
    assert code == 0, output


def test_an_unknown_task_is_refused_at_validate(write_sweep):
    path = write_sweep(evaluate={"abilities": {"labmath": {**LAB_MATH,
                                                           "task": "sftmix_lab_mth"}}})
    code, output = _validate(path)
    assert code == 2
    assert "evaluate.abilities.labmath.task" in output
    assert "did you mean 'sftmix_lab_math'" in output


def test_a_missing_package_is_refused_at_validate(write_sweep, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "lm_eval" else real(name, *a))
    code, output = _validate(write_sweep(evaluate={"abilities": {"labmath": LAB_MATH}}))
    assert code == 2
    assert "needs the lm-eval package" in output and "pip install 'sftmix-ray[lmeval]'" in output


def test_a_missing_include_path_is_refused(write_sweep, tmp_path):
    spec = {**LAB_MATH, "include_path": str(tmp_path / "nowhere")}
    code, output = _validate(write_sweep(evaluate={"abilities": {"labmath": spec}}))
    assert code == 2 and "evaluate.abilities.labmath.include_path" in output


@pytest.mark.parametrize("name", ["math", "loss_x", "2bad", "a-b", "stage1"])
def test_an_ability_name_that_collides_is_refused(name):
    with pytest.raises(ValueError, match=f"evaluate.abilities.{name}"):
        EvaluateConfig.model_validate({"abilities": {name: LAB_MATH}})


def test_an_objective_over_an_undeclared_ability_is_refused(write_sweep):
    with pytest.raises(ConfigError, match="'labmath' is not a metric a trial reports"):
        load_sweep(write_sweep(), {"search.objectives": {"labmath": "max"}})


def test_lm_eval_records_give_a_wilson_interval_and_graded_ones_a_bootstrap():
    hits = [{"doc_id": i, "value": float(i < 3)} for i in range(10)]
    graded = [{"doc_id": i, "value": i / 10} for i in range(10)]
    out = score_intervals({"labmath": hits, "f1": graded, "general_scorer": "x"})
    assert out["labmath_n"] == 10 and out["labmath_ci_low"] < 0.3 < out["labmath_ci_high"]
    assert out["f1_n"] == 10 and out["f1_ci_low"] < 0.45 < out["f1_ci_high"]


def test_heldout_loss_is_token_weighted_with_an_interval_around_it():
    pairs = {"math": [(10.0, 5), (2.0, 1), (30.0, 10), (8.0, 4)]}
    out = heldout_metrics(pairs)
    assert out["loss_math"] == pytest.approx(50 / 20)
    assert out["loss_math_ci_low"] <= out["loss_math"] <= out["loss_math_ci_high"]
    assert out["loss_math_n"] == 4


def test_the_readme_lm_eval_sweep_validates_and_is_the_quickstart_plus_one(monkeypatch):
    """sweeps/quickstart_lm_eval.yaml, the README's: `sftmix validate` accepts it, and it is the
    quickstart with one lm-eval ability (a shipped local task YAML) added as a fourth objective."""
    import yaml

    from ..conftest import ROOT

    monkeypatch.chdir(ROOT)
    code, output = _validate("sweeps/quickstart_lm_eval.yaml")
    assert code == 0, output
    sweep, _ = load_sweep("sweeps/quickstart_lm_eval.yaml")
    quick, _ = load_sweep("sweeps/quickstart.yaml")
    assert sweep.search.objectives == {**quick.search.objectives, "labmath_mc": "max"}
    assert sweep.evaluate.abilities["labmath_mc"].task == "sftmix_lab_math_mc"
    same = yaml.safe_load(open("sweeps/quickstart.yaml"))
    mine = yaml.safe_load(open("sweeps/quickstart_lm_eval.yaml"))
    for key in ("domains", "model", "train"):
        assert mine[key] == same[key], key


def test_an_edited_task_file_changes_the_evaluation_cache_key(tmp_path):
    """The evaluation cache keys lm-eval abilities by their task files' content: an edited YAML
    in include_path is scored again, not answered from the cache."""
    from sftmix_ray.config.abilities import LmEvalAbility
    from sftmix_ray.evaluate.lm_eval_run import tasks_digest

    (tmp_path / "t.yaml").write_text("task: t\n")
    abilities = {"t": LmEvalAbility(task="t", include_path=str(tmp_path))}
    before = tasks_digest(abilities)
    assert tasks_digest(abilities) == before
    (tmp_path / "t.yaml").write_text("task: t\nnum_fewshot: 1\n")
    assert tasks_digest(abilities) != before
    assert tasks_digest({"t": LmEvalAbility(task="t")}) != before  # the lab's files alone
