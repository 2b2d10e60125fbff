"""Fronts, ranks and hypervolume on constructed runs whose answers are known by hand."""

import pytest

from sftmix_ray.analysis.front import analyze, parse_objectives
from sftmix_ray.tracking.runs import Run


def run(rid, status="FINISHED", **metrics):
    return Run(rid, rid, status, metrics=metrics)


TWO = {"math": "max", "code": "max"}


def test_front_ranks_and_hypervolume_with_a_tie_and_a_missing_metric():
    runs = [run("A", math=1.0, code=0.2), run("B", math=0.2, code=1.0),
            run("C", math=0.6, code=0.6), run("D", math=0.5, code=0.5),
            run("E", math=0.6, code=0.6),  # ties C: both stay on the front
            run("F", math=0.9), run("G", status="FAILED", math=0.0, code=0.0)]
    a = analyze(runs, TWO, reference=[0.0, 0.0])
    assert a.front_ids() == ["A", "B", "C", "E"]
    assert dict(zip(a.run_ids, a.ranks.tolist())) == {"A": 1, "B": 1, "C": 1, "D": 2, "E": 1}
    assert a.missing == ["F", "G"]
    # union of [0,1]x[0,.2], [0,.2]x[0,1], [0,.6]x[0,.6] by inclusion-exclusion
    assert a.hypervolume == pytest.approx(0.2 + 0.2 + 0.36 - 0.04 - 0.12 - 0.12 + 0.04)


def test_a_single_run_is_its_own_front():
    a = analyze([run("only", math=0.3, code=0.4)], TWO)
    assert a.front_ids() == ["only"] and a.ranks.tolist() == [1]
    assert a.reference == [0.0, 0.0] and a.hypervolume == pytest.approx(0.12)


def test_minimized_objectives_and_the_default_reference():
    objectives = parse_objectives("math,loss:min")
    assert objectives == {"math": "max", "loss": "min"}
    a = analyze([run("X", math=0.5, loss=1.0), run("Y", math=0.4, loss=2.0)], objectives)
    assert a.front_ids() == ["X"] and a.ranks.tolist() == [1, 2]
    assert a.reference == [0.0, 2.0]  # 0 for a non-negative score, the worst loss seen
    assert a.hypervolume == pytest.approx(0.5 * 1.0)


def test_no_usable_runs_and_bad_input():
    a = analyze([run("F", math=0.9)], TWO)
    assert a.front_ids() == [] and a.hypervolume == 0.0 and a.missing == ["F"]
    with pytest.raises(ValueError, match="max or min"):
        parse_objectives("math:up")
    with pytest.raises(ValueError, match="2 values for 3 objectives"):
        analyze([run("A", math=1, code=1, general=1)], {**TWO, "general": "max"}, [0, 0])


def ci(rid, **scores):
    """A run with each score's interval: name=(score, low, high)."""
    metrics = {}
    for name, (mean, low, high) in scores.items():
        metrics.update({name: mean, f"{name}_ci_low": low, f"{name}_ci_high": high})
    return Run(rid, rid, "FINISHED", metrics=metrics)


def test_runs_within_noise_of_the_front_are_named():
    runs = [ci("A", math=(0.50, 0.40, 0.60), code=(0.50, 0.40, 0.60)),
            ci("B", math=(0.45, 0.35, 0.55), code=(0.45, 0.35, 0.55)),  # overlaps A
            ci("C", math=(0.10, 0.05, 0.15), code=(0.10, 0.05, 0.15)),  # clearly behind A
            run("D", math=0.30, code=0.30),  # no interval: its scores, below A's lower bounds
            run("E", math=0.44, code=0.44)]  # no interval, but above A's lower bounds
    a = analyze(runs, TWO)
    assert a.front_ids() == ["A"] and a.within_noise == ["B", "E"]


def test_the_front_over_pessimistic_bounds():
    runs = [ci("wide", math=(0.60, 0.20, 0.95), code=(0.5, 0.45, 0.55)),
            ci("narrow", math=(0.55, 0.50, 0.60), code=(0.5, 0.46, 0.54))]
    assert analyze(runs, TWO).front_ids() == ["wide"]  # the higher mean wins on scores
    lower = analyze(runs, TWO, by="lower")
    assert lower.front_ids() == ["narrow"] and lower.by == "lower"  # its bound is surer
    assert lower.values.tolist() == [[0.20, 0.45], [0.50, 0.46]]
    # a minimized objective's pessimistic end is its upper bound
    loss = analyze([ci("x", loss=(1.0, 0.8, 1.5)), ci("y", loss=(1.1, 1.05, 1.2))],
                   {"loss": "min"}, by="lower")
    assert loss.front_ids() == ["y"]
    with pytest.raises(ValueError, match="--by"):
        analyze(runs, TWO, by="median")
