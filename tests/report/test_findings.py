import pytest

from sftmix_ray.report import findings
from sftmix_ray.report.findings import MIN_POINTS
from sftmix_ray.report.table import Row

DOMAINS = ("math", "code", "general")
OBJECTIVES = {"math": "max", "code": "max", "general": "max"}


def _row(samples, scores, strategy="multi_task", k=None, seeds=1, spread=None, name="p"):
    samples = {d: float(samples.get(d, 0)) for d in DOMAINS}
    total = sum(samples.values())
    return Row(run_ids=[f"{name}-s{i}" for i in range(seeds)], name=name, strategy=strategy, k=k,
               samples=samples, shares={d: n / total for d, n in samples.items()}, params={},
               scores={o: 0.0 for o in OBJECTIVES} | scores, spread=spread or {})


def _mixed(total, share, scores):
    # math is `share` of the samples; code and general split the rest
    rest = total * (1 - share) / 2
    return _row({"math": total * share, "code": rest, "general": rest}, scores)


def test_amount_rising_trend_says_rises_with_positive_rho():
    rows = [_row({"math": n}, {"math": s}) for n, s in ((100, .1), (200, .2), (300, .3), (400, .4))]
    [sentence] = findings.amount(rows, ["math"])
    assert sentence.startswith("math rises with the total amount of training data")
    assert "ρ = +1.00" in sentence and "4 trials" in sentence


def test_amount_falling_trend_says_falls_with_negative_rho():
    rows = [_row({"code": n}, {"code": s})
            for n, s in ((100, .5), (200, .45), (300, .2), (400, .25), (500, .1))]
    [sentence] = findings.amount(rows, ["code"])
    assert sentence.startswith("code falls with") and "ρ = -0.90" in sentence
    assert "5 trials" in sentence


def test_amount_weak_correlation_claims_no_trend():
    rows = [_row({"math": n}, {"math": s})
            for n, s in ((100, .3), (200, .1), (300, .5), (400, .2), (500, .3))]
    [sentence] = findings.amount(rows, ["math"])
    assert "shows no clear trend" in sentence and "ρ = +0.10" in sentence


def test_amount_with_too_few_trials_says_so():
    rows = [_row({"math": n}, {"math": n / 1000}) for n in range(100, 100 * MIN_POINTS, 100)]
    assert len(rows) == MIN_POINTS - 1
    [sentence] = findings.amount(rows, ["math"])
    assert "too few distinct trials (3)" in sentence and "rises" not in sentence


def test_amount_at_one_total_or_constant_scores_is_too_few():
    same_total = [_row({"math": 100}, {"math": s}) for s in (.1, .2, .3, .4, .5)]
    flat = [_row({"math": n}, {"math": .3}) for n in (100, 200, 300, 400, 500)]
    assert "too few distinct trials (5)" in findings.amount(same_total, ["math"])[0]
    assert "too few" in findings.amount(flat, ["math"])[0]


def test_amount_gives_one_sentence_per_objective_in_order():
    rows = [_row({"math": n}, {"math": n / 1000, "code": 1 - n / 1000})
            for n in (100, 200, 300, 400)]
    out = findings.amount(rows, ["math", "code"])
    assert [s.split()[:2] for s in out] == [["math", "rises"], ["code", "falls"]]


def test_ratio_rising_share_says_rises():
    rows = [_mixed(900, share, {"math": share}) for share in (.2, .4, .6, .8)]
    [sentence] = findings.ratio(rows, {"math": "max"}, DOMAINS)
    assert sentence.startswith("math rises with the share of math data in the mixture")
    assert "ρ = +1.00" in sentence


def test_ratio_speaks_only_of_domains_that_were_mixed_and_are_objectives():
    alone = [_row({d: 100}, {d: .5}) for d in DOMAINS]  # shares only 0 or 1
    assert findings.ratio(alone, OBJECTIVES, DOMAINS) == []
    # general's share shrinks as math's grows while its score rises: general falls with its share
    rows = [_mixed(900, share, {"math": share, "code": .1, "general": share / 2})
            for share in (.2, .4, .6, .8)]
    out = findings.ratio(rows, {"math": "max"}, DOMAINS)
    assert [s.split()[0] for s in out] == ["math"]
    math, code, general = findings.ratio(rows, OBJECTIVES, DOMAINS)
    assert math.startswith("math rises") and general.startswith("general falls")
    assert code.startswith("code: too few")  # code's score never changes


def test_ratio_with_too_few_trials():
    rows = [_mixed(900, share, {"math": share}) for share in (.2, .5)]
    [sentence] = findings.ratio(rows, OBJECTIVES, ["math"])
    assert "too few distinct trials (2)" in sentence


def test_scaling_keeps_improving_when_the_top_amount_still_gains():
    rows = [_row({"math": n}, {"math": s}) for n, s in ((100, .1), (1000, .3), (10000, .6))]
    assert findings.scaling(rows, OBJECTIVES, DOMAINS) == [
        "math trained alone keeps improving: 0.100 at 100 samples, 0.300 at 1000, 0.600 at "
        "10000."]


def test_scaling_plateaus_when_the_top_amount_gains_under_five_percent_of_the_range():
    rows = [_row({"general": n}, {"general": s})
            for n, s in ((100, .5), (1000, .6), (10000, .601))]
    [sentence] = findings.scaling(rows, OBJECTIVES, DOMAINS)
    assert sentence.startswith("general trained alone plateaus:")


def test_scaling_averages_repeats_and_ignores_mixed_trials():
    rows = [_row({"math": 100}, {"math": .1}), _row({"math": 100}, {"math": .3}),
            _row({"math": 200}, {"math": .4}), _row({"math": 400}, {"math": .8}),
            _row({"math": 100, "code": 100}, {"math": .9})]
    [sentence] = findings.scaling(rows, OBJECTIVES, DOMAINS)
    assert "0.200 at 100 samples, 0.400 at 200, 0.800 at 400." in sentence


def test_scaling_needs_three_amounts_and_an_objective():
    two = [_row({"math": n}, {"math": n / 1000}) for n in (100, 200, 100)]
    assert findings.scaling(two, OBJECTIVES, DOMAINS) == []
    three = [_row({"math": n}, {"math": n / 1000}) for n in (100, 200, 400)]
    assert findings.scaling(three, {"code": "max"}, DOMAINS) == []


FULL = {"math": 1000, "code": 1000, "general": 1000}


def test_mixing_helps_when_the_mixture_beats_the_same_amount_alone():
    rows = [_row({"math": 1000}, {"math": .30}), _row(FULL, {"math": .35})]
    assert findings.mixing(rows, {"math": "max"}, DOMAINS) == [
        "Mixing the other domains in helps math (mixed − alone: +0.050 at 1000)."]


def test_mixing_hurts_when_the_mixture_is_worse():
    rows = [_row({"code": 1000}, {"code": .40}), _row(FULL, {"code": .25})]
    [sentence] = findings.mixing(rows, OBJECTIVES, DOMAINS)
    assert sentence == "Mixing the other domains in hurts code (mixed − alone: −0.150 at 1000)."


def test_mixing_mixed_verdict_across_amounts():
    half = {d: 500 for d in DOMAINS}
    rows = [_row({"math": 500}, {"math": .2}), _row({"math": 1000}, {"math": .4}),
            _row(half, {"math": .25}), _row(FULL, {"math": .3})]
    [sentence] = findings.mixing(rows, {"math": "max"}, DOMAINS)
    assert "helps at some amounts and hurts at others math" in sentence
    assert sentence.endswith("(mixed − alone: +0.050 at 500, −0.100 at 1000).")


def test_mixing_ignores_staged_strategies_partial_mixes_and_unmatched_amounts():
    rows = [_row({"math": 1000}, {"math": .3}),
            _row(FULL, {"math": .9}, strategy="dmt", k=0.25),
            _row({"math": 1000, "code": 1000}, {"math": .9}),
            _row({d: 2000 for d in DOMAINS}, {"math": .9})]
    assert findings.mixing(rows, {"math": "max"}, DOMAINS) == []


def test_mixing_treats_a_missing_strategy_as_one_mixed_stage():
    rows = [_row({"math": 1000}, {"math": .3}), _row(FULL, {"math": .4}, strategy=None)]
    assert "helps math" in findings.mixing(rows, {"math": "max"}, DOMAINS)[0]


def test_strategies_table_names_dmt_by_k_and_says_who_leads():
    rows = [_row(FULL, {"math": .35, "general": .55}),
            _row(FULL, {"math": .45, "general": .50}, strategy="dmt", k=0.25),
            _row(FULL, {"math": .55, "general": .50}, strategy="dmt", k=0.25),
            _row(FULL, {"math": .40, "general": .60}, strategy="dmt", k=1.0)]
    out, cells = findings.strategies(rows, ["math", "general"])
    assert set(cells) == {"multi_task", "dmt (k=0.25)", "dmt (k=1)"}
    mean, half_range, n = cells["dmt (k=0.25)"]["math"]
    assert (round(mean, 6), round(half_range, 6), n) == (0.5, 0.05, 2)
    assert out == [
        "On math, dmt (k=0.25) leads (0.500) and multi_task trails (0.350), means over 2 and 1 "
        "trials.",
        "On general, dmt (k=1) leads (0.600) and dmt (k=0.25) trails (0.500), means over 1 and 2 "
        "trials."]


def test_strategies_with_one_strategy_gives_cells_but_no_sentences():
    rows = [_row(FULL, {"math": .2}), _row(FULL, {"math": .4})]
    out, cells = findings.strategies(rows, ["math"])
    assert out == [] and list(cells) == ["multi_task"]
    assert cells["multi_task"]["math"][2] == 2


def test_strategies_unknown_strategy_and_dmt_without_k():
    rows = [_row(FULL, {"math": .2}, strategy=None), _row(FULL, {"math": .4}, strategy="dmt")]
    out, cells = findings.strategies(rows, ["math"])
    assert set(cells) == {"?", "dmt"}
    assert out == ["On math, dmt leads (0.400) and ? trails (0.200), means over 1 and 1 trials."]


def test_uncertainty_without_repeats_says_noise_is_unmeasured():
    text = findings.uncertainty([_row(FULL, {"math": .2}), _row(FULL, {"math": .3})])
    assert text.startswith("Each point ran once") and "cannot tell run-to-run noise" in text


def test_uncertainty_with_repeats_reports_the_largest_spread():
    rows = [_row(FULL, {}, seeds=2, spread={"math": .02, "code": .07}),
            _row(FULL, {}, seeds=3, spread={"math": .05}), _row(FULL, {})]
    text = findings.uncertainty(rows)
    assert text.startswith("2 of 3 points ran with several seeds")
    assert "reaches 0.070" in text


def test_best_per_objective_follows_each_direction():
    a = _row(FULL, {"math": .2, "code": .9}, name="a")
    b = _row(FULL, {"math": .6, "code": .1}, name="b")
    c = _row(FULL, {"math": .4, "code": .5}, name="c")
    best = findings.best_per_objective([a, b, c], {"math": "max", "code": "min"})
    assert best == {"math": b, "code": b}
    best = findings.best_per_objective([a, b, c], {"math": "min", "code": "max"})
    assert best["math"] is a and best["code"] is a


@pytest.mark.parametrize("direction,expected", [("max", "c"), ("min", "a")])
def test_best_per_objective_single_objective(direction, expected):
    rows = [_row(FULL, {"general": s}, name=n) for n, s in (("a", .1), ("b", .5), ("c", .7))]
    assert findings.best_per_objective(rows, {"general": direction})["general"].name == expected
