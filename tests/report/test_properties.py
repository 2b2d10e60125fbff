"""Property tests: the report, the study's verdicts, the findings, the Pareto front and the table
on random runs shaped like a sweep's (ties, equal k, repeated points, a single trial, missing or
NaN scores, every trial failed, one strategy only). Whatever the rows, nothing raises, and every
claim made is one the rows support: a leader only when its interval is apart from the
runner-up's, a trend only with p < α, a front of non-dominated points, a verdict only where the
rows hold the arms it compares. Hand-built rows with distinct values hid a crash on two DMT
trials at one k (issue 22): these rows are drawn to collide."""

from __future__ import annotations

import math
import re

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sftmix_ray.analysis.front import analyze
from sftmix_ray.pareto import dominates
from sftmix_ray.report import findings, study
from sftmix_ray.report.build import findings_sections, render_html, render_markdown, report_context
from sftmix_ray.report.stats import ALPHA
from sftmix_ray.report.table import build_rows, domains_of
from sftmix_ray.tracking.runs import Run

DOMAINS = ("math", "code", "general")
OBJECTIVES = {"math": "max", "code": "max", "general": "max"}
# few distinct values, so ties, equal k and repeated points are common, not rare
SCORES = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0]),
                   st.floats(0, 1, allow_nan=False), st.just(math.nan), st.none())
SAMPLES = st.sampled_from([0, 4, 16, 64])
STRATEGIES = ("multi_task", "dmt", "sequential", "mixed_sequential")


@st.composite
def a_run(draw, i: int, strategies: tuple[str, ...]) -> Run:
    strategy = draw(st.sampled_from(strategies))
    k = draw(st.sampled_from([0.25, 0.0625, 1 / 256])) if strategy == "dmt" else None
    counts = {d: draw(SAMPLES) for d in DOMAINS}
    if not any(counts.values()):
        counts["math"] = 4
    params = {"strategy": strategy, "seed": str(draw(st.integers(0, 2))),
              **{f"counts.{d}": str(n) for d, n in counts.items()}}
    if k is not None:
        params["k"] = str(k)
    metrics = {f"samples_{d}": float(n) for d, n in counts.items()}
    for o in OBJECTIVES:
        score = draw(SCORES)
        if score is None:
            continue
        metrics[o] = score
        if not math.isnan(score) and draw(st.booleans()):  # some runs logged no interval
            half = draw(st.sampled_from([0.0, 0.05, 0.2]))
            metrics.update({f"{o}_ci_low": max(0.0, score - half),
                            f"{o}_ci_high": min(1.0, score + half), f"{o}_n": 64.0})
    status = draw(st.sampled_from(["FINISHED", "FINISHED", "FINISHED", "FAILED"]))
    return Run(f"run{i}", f"t{i}", status, params, metrics, {})


@st.composite
def sweeps(draw) -> list[Run]:
    """1–10 runs; sometimes one strategy only, sometimes every run failed."""
    strategies = draw(st.sampled_from([STRATEGIES, ("dmt",), ("multi_task",),
                                       ("dmt", "sequential", "multi_task")]))
    n = draw(st.integers(1, 10))
    runs = [draw(a_run(i, strategies)) for i in range(n)]
    if draw(st.integers(0, 9)) == 0:
        runs = [Run(r.run_id, r.name, "FAILED", r.params, r.metrics, r.tags) for r in runs]
    return runs


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _usable(runs) -> list[Run]:
    return [r for r in runs if r.status == "FINISHED" and all(
        isinstance(r.metrics.get(o), float) and math.isfinite(r.metrics[o]) for o in OBJECTIVES)]


@FAST
@given(sweeps())
def test_the_table_groups_every_usable_run_once(runs):
    rows = build_rows(runs, OBJECTIVES)
    usable = _usable(runs)
    assert sorted(i for r in rows for i in r.run_ids) == sorted(r.run_id for r in usable)
    for row in rows:  # a row is the mean of its repeats, and repeats share everything but seed
        members = [r for r in usable if r.run_id in row.run_ids]
        assert len({tuple(sorted((k, v) for k, v in m.params.items() if k != "seed"))
                    for m in members}) == 1
        for o in OBJECTIVES:
            assert math.isclose(row.scores[o], np.mean([m.metrics[o] for m in members]))
            if o in row.intervals:
                low, high, _ = row.intervals[o]
                assert low <= row.scores[o] + 1e-12 and row.scores[o] <= high + 1e-12
                assert 0.0 <= low and high <= 1.0  # the abilities' range, even over 2 seeds


@FAST
@given(sweeps())
def test_the_front_is_exactly_the_non_dominated_rows(runs):
    rows = build_rows(runs, OBJECTIVES)
    up = [True] * len(OBJECTIVES)
    for row in rows:
        values = [row.scores[o] for o in OBJECTIVES]
        beaten = any(dominates([o.scores[x] for x in OBJECTIVES], values, up) for o in rows)
        assert row.front == (not beaten) == (row.rank == 1)
        assert not (row.front and row.within_noise)


@FAST
@given(sweeps(), st.sampled_from(["mean", "lower"]))
def test_pareto_on_runs_keeps_every_run_and_its_front_is_non_dominated(runs, by):
    result = analyze(runs, OBJECTIVES, by=by)
    assert sorted(result.run_ids + result.missing) == sorted(r.run_id for r in runs)
    up = [True] * len(OBJECTIVES)
    for i, on in enumerate(result.on_front):
        beaten = any(dominates(list(result.values[j]), list(result.values[i]), up)
                     for j in range(len(result.run_ids)))
        assert bool(on) == (not beaten)
    assert not set(result.within_noise) & set(result.front_ids())
    assert result.hypervolume >= 0 and (result.run_ids or result.hypervolume == 0)


def _rows_named(rows, name: str):
    return next(r for r in rows if r.name == name)


LEADS = re.compile(r"^Best on (\w+): (t\d+) leads")
TIE = re.compile(r"^Best on (\w+): no leader: (.+) tie at ([0-9.]+)")


@FAST
@given(sweeps())
def test_a_leader_is_named_only_when_its_interval_is_apart(runs):
    rows = build_rows(runs, OBJECTIVES)
    for line in findings.best(rows, OBJECTIVES):
        if m := LEADS.match(line):
            o, leader = m.group(1), _rows_named(rows, m.group(2))
            others = [r for r in rows if r is not leader]
            assert all(leader.scores[o] > r.scores[o] for r in others), line
            runner = max(others, key=lambda r: r.scores[o])
            assert leader.intervals[o][0] > runner.intervals[o][1], line
        elif m := TIE.match(line):
            o, names = m.group(1), m.group(2).split(", ")
            assert len(names) > 1
            assert len({_rows_named(rows, n).scores[o] for n in names}) == 1, line
    told = findings.best_verdicts(rows, OBJECTIVES)
    for o, label in told.items():
        if label.startswith("yes"):
            ordered = sorted(rows, key=lambda r: -r.scores[o])
            assert ordered[0].intervals[o][0] > ordered[1].intervals[o][1]


TREND = re.compile(r"(rises|falls) with .*p = ([0-9.e+-]+)")


@FAST
@given(sweeps())
def test_every_finding_holds_to_its_rows(runs):
    rows = build_rows(runs, OBJECTIVES)
    sections, cells = findings_sections(rows, OBJECTIVES, domains_of(runs))
    for line in (x for lines in sections.values() for x in lines):
        if m := TREND.search(line):  # a trend claimed only below α
            assert float(m.group(2)) < ALPHA, line
        assert "nan" not in line.lower(), line
    strategies = {findings._strategy_name(r) for r in rows}
    assert set(cells) == strategies
    if len(strategies) < 2:
        assert sections["Strategies"] == []


def _strategies(rows) -> set[str]:
    return {r.strategy for r in rows}


@FAST
@given(sweeps())
def test_study_verdicts_speak_only_to_the_arms_they_have(runs):
    rows = build_rows(runs, OBJECTIVES)
    verdicts = {v.finding: v for v in study.verdicts(rows)}
    if not rows:
        assert all(v.verdict == "not applicable" for v in verdicts.values())
    for v in verdicts.values():
        assert v.verdict in ("shown", "partly shown", "not shown", "not applicable")
    have = _strategies(rows)
    for name, needs in (("(d) forgetting", {"sequential", "multi_task"}),
                        ("(e) DMT", {"dmt", "sequential", "multi_task"})):
        if name in verdicts and not needs <= have:
            assert verdicts[name].verdict == "not applicable"
    applicable = study.verdicts(rows, applicable_only=True)
    assert all(v.verdict != "not applicable" for v in applicable)


@FAST
@given(sweeps())
def test_the_report_renders_whatever_the_rows(runs):
    rows = build_rows(runs, OBJECTIVES)
    ctx = report_context(rows, runs, OBJECTIVES, domains_of(runs), title="t", source="s")
    page, md = render_html(ctx), render_markdown(ctx)
    assert f"{len(rows)} points" in page and f"{len(ctx['failed'])} failed runs" in md
    failed = [r for r in runs if r.status != "FINISHED"]
    assert len(ctx["failed"]) == len(failed)
    for r in rows:  # every point is in the table, the front marked
        assert f"| {r.name} | {'★' if r.front else '≈' if r.within_noise else ''} |" in md


def test_two_dmt_trials_at_one_k_are_decided_not_compared():
    """The quickstart's crash: two DMT rows at k = 1/64 (sorted((k, row)) compared Rows)."""
    def run(i, strategy, k, scores):
        params = {"strategy": strategy, "counts.math": str(10 * i), "seed": "0"}
        if k:
            params["k"] = str(k)
        return Run(f"r{i}", f"t{i}", "FINISHED", params,
                   {**dict(zip(OBJECTIVES, scores)), "samples_math": 10.0 * i}, {})

    runs = [run(1, "dmt", 1 / 64, (0.2, 0.5, 0.4)), run(2, "dmt", 1 / 64, (0.3, 0.6, 0.5)),
            run(3, "sequential", None, (0.1, 0.1, 0.1)), run(4, "multi_task", None, (.3, .3, .3))]
    verdict = study.dmt(build_rows(runs, OBJECTIVES))
    assert verdict.verdict != "not applicable" and "DMT(k=1/64)" in verdict.lab
