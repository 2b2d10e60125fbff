"""Findings from hand-made rows whose answers are known: a trend only with p < 0.05, a domain's
amount trend only from its single-domain trials, a leader only with intervals apart, floor and
ceiling flagged, and rows without intervals said to have none."""

import pytest
from scipy.stats import binomtest

from sftmix_ray.report import findings
from sftmix_ray.report.findings import MIN_POINTS
from sftmix_ray.report.table import Row

DOMAINS = ("math", "code", "general")
OBJECTIVES = {"math": "max", "code": "max", "general": "max"}
FULL = {"math": 1000, "code": 1000, "general": 1000}


def wilson(k, n):
    ci = binomtest(k, n).proportion_ci(method="wilson")
    return float(ci.low), float(ci.high), n


def _row(samples, scores, strategy="multi_task", k=None, seeds=1, spread=None, name="p",
         intervals=None):
    samples = {d: float(samples.get(d, 0)) for d in DOMAINS}
    total = sum(samples.values())
    return Row(run_ids=[f"{name}-s{i}" for i in range(seeds)], name=name, strategy=strategy, k=k,
               samples=samples, shares={d: n / total for d, n in samples.items()}, params={},
               scores={o: 0.5 for o in OBJECTIVES} | scores, spread=spread or {},
               intervals=intervals or {})


def _of(hits, n, samples=FULL, o="math", **kw):
    """A row whose `o` is `hits` of n problems, with its Wilson interval."""
    return _row(samples, {o: hits / n}, intervals={o: wilson(hits, n)}, **kw)


def _mixed(total, share, scores):
    # math is `share` of the samples; code and general split the rest
    rest = total * (1 - share) / 2
    return _row({"math": total * share, "code": rest, "general": rest}, scores)


# ---------------------------------------------------------------- trends: claimed only at p < 0.05

@pytest.mark.parametrize("points,verb,numbers", [
    (((100, .1), (200, .2), (300, .3), (400, .4), (500, .5)), "rises",
     "ρ = +1.00, p = 0.017, 5 trials"),
    (((100, .6), (200, .5), (300, .45), (400, .3), (500, .2), (600, .1)), "falls",
     "ρ = -1.00, p = 0.0028, 6 trials"),
    (list(zip(range(100, 1100, 100), (0, .2, .1, .3, .5, .4, .6, .8, .7, .9))), "rises",
     "ρ = +0.96, p = 7.3e-06, 10 trials"),  # beyond 8 points: scipy's t approximation
])
def test_a_trend_with_p_below_alpha_is_claimed(points, verb, numbers):
    rows = [_row({"math": n}, {"math": s}) for n, s in points]
    [alone, pooled] = findings.amount(rows, ["math"], DOMAINS)
    assert alone.startswith(f"math trained alone (single-domain trials only): math {verb} with "
                            "the amount of math data (Spearman ")
    assert numbers in alone and pooled.startswith(f"Pooled over all mixtures: math {verb}")


@pytest.mark.parametrize("points,numbers", [
    # a perfect ρ on 4 points: scipy's t approximation says p = 0, the exact p is 1/12
    (((100, .1), (200, .2), (300, .3), (400, .4)), "ρ = +1.00, p = 0.083, 4 trials"),
    (((100, .5), (200, .45), (300, .2), (400, .25), (500, .1)), "ρ = -0.90, p = 0.083, 5 trials"),
    (((1, .3), (2, .1), (3, .2), (4, .6), (5, .4), (6, .5)), "ρ = +0.66, p = 0.17, 6 trials"),
    (((100, .3), (200, .1), (300, .5), (400, .2), (500, .3)), "ρ = +0.10, p = 0.9, 5 trials"),
])
def test_a_strong_rho_without_p_below_alpha_is_no_evidence(points, numbers):
    rows = [_row({"code": n}, {"code": s}) for n, s in points]
    [alone, pooled] = findings.amount(rows, ["code"], DOMAINS)
    assert alone == (f"code trained alone (single-domain trials only): no evidence of a trend of "
                     f"code with the amount of code data (Spearman {numbers}).")
    assert "rises" not in pooled and "falls" not in pooled and "no evidence" in pooled


def test_the_domain_trend_reads_only_its_single_domain_trials_and_pooled_is_labelled():
    # math trained alone rises; general-alone trials (math 0.02, at larger totals) turn the
    # pooled trend of math around: the artifact a pooled trend must be labelled for
    rows = [_row({"math": n}, {"math": s})
            for n, s in ((100, .1), (200, .2), (300, .3), (400, .4), (500, .5))]
    rows += [_row({"general": n}, {"math": .02}) for n in (600, 700, 800, 900, 1000)]
    [alone, pooled] = findings.amount(rows, ["math"], DOMAINS)
    assert alone.startswith("math trained alone (single-domain trials only): math rises")
    assert "5 trials" in alone
    assert pooled == ("Pooled over all mixtures: math falls with the total amount of training "
                      "data (Spearman ρ = -0.68, p = 0.031, 10 trials).")


def test_an_objective_that_is_no_domain_gets_only_the_pooled_trend():
    rows = [_row({"math": n}, {"loss": 1 - n / 1000}) for n in range(100, 600, 100)]
    [sentence] = findings.amount(rows, ["loss"], DOMAINS)
    assert sentence.startswith("Pooled over all mixtures: loss falls with the total amount")


def test_too_few_trials_one_amount_or_a_constant_score_claim_nothing():
    few = [_row({"math": n}, {"math": n / 1000}) for n in range(100, 100 * MIN_POINTS, 100)]
    same_total = [_row({"math": 100}, {"math": s}) for s in (.1, .2, .3, .4, .5)]
    flat = [_row({"math": n}, {"math": .3}) for n in (100, 200, 300, 400, 500)]
    assert "too few trials to test a trend" in findings.amount(few, ["math"], DOMAINS)[0]
    assert "(3 trials, 3 distinct values of it)" in findings.amount(few, ["math"], DOMAINS)[0]
    assert "(5 trials, 1 distinct values of it)" in findings.amount(same_total, ["math"])[0]
    assert findings.amount(flat, ["math"])[0].endswith(
        "no evidence of a trend of math with the total amount of training data: it is 0.300 in "
        "all 5 trials.")


def test_ratio_reads_mixed_trials_only_and_claims_only_at_p_below_alpha():
    rising = [_mixed(900, share, {"math": share}) for share in (.2, .4, .5, .6, .8)]
    alone = [_row({"math": 900}, {"math": .9}), _row({"code": 900}, {"math": .95})]
    [sentence] = findings.ratio(rising + alone, {"math": "max"}, DOMAINS)
    assert sentence == ("Mixed trials only: math rises with the share of math data in the mixture "
                        "(Spearman ρ = +1.00, p = 0.017, 5 trials).")
    four = [_mixed(900, share, {"math": share}) for share in (.2, .4, .6, .8)]
    assert "no evidence of a trend" in findings.ratio(four, {"math": "max"}, DOMAINS)[0]
    assert findings.ratio(alone, OBJECTIVES, DOMAINS) == []  # shares only 0 or 1


def test_ratio_says_when_the_total_is_not_held_fixed():
    rows = [_mixed(total, share, {"math": share})
            for total, share in ((900, .2), (1800, .4), (900, .5), (1800, .6), (900, .8))]
    [sentence] = findings.ratio(rows, {"math": "max"}, DOMAINS)
    assert sentence.startswith("Mixed trials only, totals 900 to 1800: amount is not held fixed:")


# ---------------------------------------------------------------- scaling: top vs middle amount

def test_scaling_keeps_improving_only_when_the_top_interval_is_above_the_middle():
    rows = [_of(k, 64, {"math": n}) for n, k in ((100, 6), (1000, 19), (10000, 45))]
    assert findings.scaling(rows, OBJECTIVES, DOMAINS) == [
        "math trained alone: 0.094 [0.044, 0.190] at 100 samples, 0.297 [0.199, 0.418] at "
        "1000 samples, 0.703 [0.582, 0.801] at 10000 samples; it keeps improving from 1000 "
        "samples to 10000 samples (95% intervals apart)."]


def test_scaling_with_overlapping_or_missing_intervals_claims_no_gain():
    close = [_of(k, 64, {"general": n}, o="general")
             for n, k in ((100, 30), (1000, 38), (10000, 40))]
    [sentence] = findings.scaling(close, OBJECTIVES, DOMAINS)
    assert sentence.endswith("no evidence that it still gains from 1000 samples to 10000 "
                             "samples (intervals overlap).")
    bare = [_row({"general": n}, {"general": s}) for n, s in ((100, .5), (1000, .6), (10000, .7))]
    [sentence] = findings.scaling(bare, OBJECTIVES, DOMAINS)
    assert "0.600 (no interval) at 1000 samples" in sentence
    assert sentence.endswith("is untested (no interval).")


def test_scaling_pools_repeats_and_ignores_mixed_trials():
    rows = [_row({"math": 100}, {"math": .1}), _row({"math": 100}, {"math": .3}),
            _row({"math": 200}, {"math": .4}), _row({"math": 400}, {"math": .8}),
            _row({"math": 100, "code": 100}, {"math": .9})]
    [sentence] = findings.scaling(rows, OBJECTIVES, DOMAINS)
    assert "0.200 (no interval) at 100 samples, 0.400 (no interval) at 200 samples" in sentence
    two = [_row({"math": n}, {"math": n / 1000}) for n in (100, 200, 100)]
    assert findings.scaling(two, OBJECTIVES, DOMAINS) == []


# ---------------------------------------------------------------- comparisons: leader only apart

def test_four_vs_zero_of_64_is_within_noise_and_forty_vs_five_is_a_lead():
    noise = [_of(4, 64, strategy="dmt", name="a"), _of(0, 64, name="b")]
    lead = [_of(40, 64, strategy="dmt", name="a"), _of(5, 64, name="b")]
    assert findings.strategies(noise, ["math"])[0] == [
        "On math across strategies: within noise: dmt (n=1) 0.062 [0.025, 0.150], multi_task "
        "(n=1) 0.000 [0.000, 0.057] (intervals overlap)."]
    assert findings.strategies(lead, ["math"])[0] == [
        "On math across strategies: dmt (n=1) leads, 0.625 [0.503, 0.733], its 95% interval "
        "apart from the runner-up multi_task (n=1), 0.078 [0.034, 0.170]."]
    assert findings.best(noise, {"math": "max"})[0].startswith("Best on math: within noise: a")
    assert findings.best(lead, {"math": "max"})[0].startswith("Best on math: a leads, 0.625")
    assert findings.best_verdicts(noise, {"math": "max"}) == {
        "math": "no: within noise of 1 others"}
    assert findings.best_verdicts(lead, {"math": "max"}) == {
        "math": "yes: interval apart from the runner-up"}


def test_a_four_way_tie_at_zero_names_no_leader_and_flags_the_floor():
    rows = [_of(0, 64, strategy=s, name=s) for s in ("multi_task", "sequential", "mixed", "dmt")]
    [sentence], _ = findings.strategies(rows, ["math"])
    assert sentence.startswith("On math across strategies: no leader (")
    assert "leads" not in sentence and sentence.endswith(
        "math is at the floor in all 4 trials compared (each score is 0 or its 95% upper bound is "
        "below 0.05): no finding about it can be read from this sweep.")
    assert findings.best_verdicts(rows, {"math": "max"}) == {"math": "no: at the floor"}
    assert findings.limits(rows, ["math"]) == [
        "math is at the floor in every one of the 4 trials (each score is 0 or its 95% upper bound "
        "is below 0.05): no finding about it can be read from this sweep."]


@pytest.mark.parametrize("intervals", [True, False])
def test_equal_scores_above_the_floor_name_no_leader(intervals):
    rows = [_of(32, 64, name=n, strategy=n) if intervals else
            _row(FULL, {"math": .5}, name=n, strategy=n) for n in ("a", "b", "c")]
    [sentence], _ = findings.strategies(rows, ["math"])
    assert sentence == ("On math across strategies: no leader: a (n=1), b (n=1), c (n=1) tie at "
                        "0.500.")
    assert findings.best(rows, {"math": "max"}) == [
        "Best on math: no leader: a, b, c tie at 0.500."]


def test_without_intervals_the_difference_is_untested():
    rows = [_row(FULL, {"math": .35}), _row(FULL, {"math": .45}, strategy="dmt", k=0.25),
            _row(FULL, {"math": .55}, strategy="dmt", k=0.25)]
    out, cells = findings.strategies(rows, ["math"])
    assert out == ["On math across strategies: dmt (k=0.25) (n=2) scores best (0.500) ahead of "
                   "multi_task (n=1) (0.350); the difference is untested (no interval)."]
    assert cells["dmt (k=0.25)"]["math"] == (0.5, pytest.approx(0.05), 2, None, None)
    assert findings.cell_text(cells["multi_task"]["math"]) == "0.350 no interval (n=1)"


def test_a_strategy_cell_carries_the_interval_of_its_mean():
    rows = [_of(20, 64, strategy="dmt", k=1.0), _of(24, 64, strategy="dmt", k=1.0),
            _of(40, 64)]
    _, cells = findings.strategies(rows, ["math"])
    dmt = cells["dmt (k=1)"]["math"]
    assert dmt.mean == pytest.approx(22 / 64) and dmt.n == 2
    assert dmt.low < wilson(20, 64)[0] and dmt.high > wilson(24, 64)[1]  # seed spread widens it


def test_the_minimized_objective_leads_from_below():
    rows = [_row(FULL, {"loss": .2}, name="a", intervals={"loss": (.15, .25, 64)}),
            _row(FULL, {"loss": .9}, name="b", intervals={"loss": (.8, 1.0, 64)})]
    assert findings.best(rows, {"loss": "min"})[0].startswith("Best on loss: a leads, 0.200")


def test_strategies_with_one_strategy_gives_cells_but_no_sentences():
    rows = [_row(FULL, {"math": .2}), _row(FULL, {"math": .4})]
    out, cells = findings.strategies(rows, ["math"])
    assert out == [] and list(cells) == ["multi_task"] and cells["multi_task"]["math"].n == 2


# ---------------------------------------------------------------- mixing: mixed vs alone

def test_mixing_helps_only_when_the_intervals_are_apart():
    rows = [_of(10, 64, {"math": 1000}), _of(40, 64)]
    assert findings.mixing(rows, {"math": "max"}, DOMAINS) == [
        "Mixing the other domains in helps math (mixed − alone: +0.469 at 1000, 0.625 [0.503, "
        "0.733] vs 0.156 [0.087, 0.264]: helps)."]
    rows = [_of(40, 64, {"code": 1000}, o="code"), _of(10, 64, o="code")]
    assert findings.mixing(rows, OBJECTIVES, DOMAINS)[0].startswith(
        "Mixing the other domains in hurts code (mixed − alone: −0.469 at 1000")


def test_mixing_within_noise_or_without_intervals_claims_nothing():
    rows = [_of(30, 64, {"math": 1000}), _of(33, 64)]
    [sentence] = findings.mixing(rows, {"math": "max"}, DOMAINS)
    assert sentence.startswith("No evidence that mixing the other domains in changes math "
                               "(intervals overlap) (mixed − alone: +0.047 at 1000")
    bare = [_row({"math": 1000}, {"math": .30}), _row(FULL, {"math": .35})]
    assert findings.mixing(bare, {"math": "max"}, DOMAINS) == [
        "Mixing the other domains in: whether it helps or hurts math is untested (no interval) "
        "(mixed − alone: +0.050 at 1000, 0.350 (no interval) vs 0.300 (no interval): untested)."]


def test_mixing_mixed_evidence_across_amounts_and_ignored_rows():
    half = {d: 500 for d in DOMAINS}
    rows = [_of(10, 64, {"math": 500}), _of(40, 64, {"math": 1000}), _of(40, 64, half),
            _of(38, 64), _of(60, 64, strategy="dmt", k=0.25),
            _of(60, 64, {"math": 1000, "code": 1000})]
    [sentence] = findings.mixing(rows, {"math": "max"}, DOMAINS)
    assert sentence.startswith("Mixed evidence on mixing the other domains in for math")
    assert ": helps; −0.031 at 1000" in sentence and sentence.endswith("within noise).")


# ---------------------------------------------------------------- floor, ceiling, no interval

@pytest.mark.parametrize("rows,expected", [
    ([_of(0, 64, {"math": n}) for n in (100, 200, 300, 400, 500)], "floor"),
    ([_of(2, 200, {"math": n}) for n in (100, 200, 300, 400, 500)], "floor"),  # upper < 0.05
    ([_row({"math": n}, {"math": 0.0}) for n in (100, 200, 300, 400, 500)], "floor"),
    ([_of(64, 64, {"math": n}) for n in (100, 200, 300, 400, 500)], "ceiling"),
    ([_of(199, 200, {"math": n}) for n in (100, 200, 300, 400, 500)], "ceiling"),
])
def test_floor_and_ceiling_are_flagged_instead_of_a_trend(rows, expected):
    [alone, pooled] = findings.amount(rows, ["math"], DOMAINS)
    assert f"math is at the {expected} in all 5 trials" in alone and "trend" not in alone
    assert f"math is at the {expected}" in pooled
    assert findings.limits(rows, ["math"])[0].startswith(f"math is at the {expected} in every")


def test_near_the_floor_but_not_at_it_is_not_flagged():
    one_of_64 = [_of(1, 64, {"math": n}) for n in (100, 200, 300, 400, 500)]  # upper 0.083
    above_one = [_row({"math": n}, {"math": 3.0}) for n in (100, 200)]  # not a [0, 1] score
    assert findings.limits(one_of_64, ["math"]) == []
    assert findings.limits(above_one, ["math"]) == []
    assert findings.limits([_row(FULL, {"math": 0.0}), _row(FULL, {"math": 0.01})], ["math"]) == []


def test_scaling_and_mixing_at_the_ceiling_say_so():
    rows = [_of(64, 64, {"math": n}) for n in (100, 1000, 10000)] + [_of(64, 64)]
    [scaling] = findings.scaling(rows, OBJECTIVES, DOMAINS)
    [mixing] = findings.mixing(rows, OBJECTIVES, DOMAINS)
    assert scaling.startswith("math trained alone: math is at the ceiling at every amount")
    assert mixing.startswith("Mixing the other domains in: math is at the ceiling alone and mixed")


def test_rows_without_interval_metrics_say_so():
    bare = [_row(FULL, {"math": .2}), _row(FULL, {"math": .3})]
    some = bare + [_of(20, 64)]
    assert findings.intervals_note(bare, ["math", "code"]) == (
        "No interval on some scores: math (all of 2 points), code (all of 2 points), e.g. runs "
        "logged before <ability>_ci_low/_ci_high/_n existed. None is derived for them, and "
        "comparisons involving them are untested.")
    assert "math (2 of 3 points)" in findings.intervals_note(some, ["math"])
    assert findings.intervals_note([_of(20, 64)], ["math"]).startswith("Every score carries")
    assert all(r.intervals == {} for r in bare)


# ---------------------------------------------------------------- unchanged: repeats, best rows

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
