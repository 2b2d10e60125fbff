"""The study's five findings, decided from rows with known answers: each verdict follows the
intervals and tests, and says "not shown" or "not applicable" when the rows do not show it."""

from sftmix_ray.report import study
from sftmix_ray.report.table import Row

FULL = 1000


def _row(samples: dict, scores: dict, half: float = 0.05, strategy="multi_task", k=None) -> Row:
    samples = {d: float(samples.get(d, 0)) for d in ("math", "code", "general")}
    total = sum(samples.values())
    return Row(run_ids=["r"], name=str(samples), strategy=strategy, k=k, samples=samples,
               shares={d: n / total for d, n in samples.items()}, params={}, scores=scores,
               intervals={o: (max(0.0, s - half), min(1.0, s + half), 64)
                          for o, s in scores.items()})


def _scores(math=0.1, code=0.1, general=0.1) -> dict:
    return {"math": math, "code": code, "general": general}


FRACTIONS = (1 / 256, 1 / 64, 1 / 16, 1 / 4, 1)


def _rq1(general_curve) -> list[Row]:
    rows = []
    for i, f in enumerate(FRACTIONS):
        n = FULL * f
        rows.append(_row({"math": n}, _scores(math=0.05 + 0.15 * i)))
        rows.append(_row({"code": n}, _scores(code=0.02 + 0.2 * i)))
        rows.append(_row({"general": n}, _scores(general=general_curve[i])))
    return rows


def test_scaling_shown_when_specialized_rise_and_general_plateaus():
    verdict = study.scaling(_rq1([0.3, 0.55, 0.6, 0.6, 0.62]))
    assert verdict.verdict == "shown", verdict.lab
    assert "general within noise" in verdict.lab


def test_scaling_partly_shown_when_general_keeps_rising():
    verdict = study.scaling(_rq1([0.05, 0.2, 0.35, 0.5, 0.7]))
    assert verdict.verdict == "partly shown", verdict.lab


def test_scaling_not_applicable_without_single_domain_arms():
    rows = [_row({"math": 10, "code": 10, "general": 10}, _scores())]
    assert study.scaling(rows).verdict == "not applicable"


def _rq2(low_gain: float, high_gain: float) -> list[Row]:
    rows = []
    for f, gain in ((1 / 64, low_gain), (1 / 16, low_gain), (1, high_gain)):
        n = FULL * f
        rows += [_row({"math": n}, _scores(math=0.3)), _row({"code": n}, _scores(code=0.3)),
                 _row({"general": n}, _scores(general=0.3)),
                 _row({"math": n, "code": n, "general": n},
                      _scores(math=0.3 + gain, code=0.3, general=0.3))]
    return rows


def test_mixing_helps_low_and_conflicts_high():
    assert study.mixing(_rq2(0.2, -0.2)).verdict == "shown"
    assert study.mixing(_rq2(0.2, 0.0)).verdict == "partly shown"
    # differences inside the intervals are never read as help or harm
    assert study.mixing(_rq2(0.05, -0.05)).verdict == "not shown"


def _rq3(ratio_effect: float) -> list[Row]:
    rows = []
    for general in (FULL, FULL / 64):
        lift = ratio_effect if general < FULL else 0.0
        for i, f in enumerate(FRACTIONS):
            n = FULL * f
            rows.append(_row({"math": n, "code": n, "general": general},
                             _scores(math=0.05 + 0.15 * i + lift, code=0.05 + 0.15 * i + lift)))
    return rows


def test_amount_matters_more_than_ratio():
    assert study.amount_vs_ratio(_rq3(0.0)).verdict == "shown"
    # the ratio moves the scores beyond noise at every amount: only the amount part holds
    both = study.amount_vs_ratio(_rq3(0.3))
    assert both.verdict == "partly shown" and "5 of 5 pairs apart" in both.lab


def _rq4(seq_math: float, dmt_math: float, dmt_general: float) -> list[Row]:
    full = {"math": FULL, "code": FULL, "general": FULL}
    rows = [_row(full, _scores(0.5, 0.5, 0.6)),
            _row(full, _scores(seq_math, 0.5, 0.6), strategy="sequential")]
    for i, k in enumerate((1 / 256, 1 / 16, 1)):
        rows.append(_row(full, _scores(dmt_math + 0.1 * i, 0.5 + 0.1 * i, dmt_general - 0.1 * i),
                         strategy="dmt", k=k))
    return rows


def test_sequential_forgets_and_dmt_keeps_and_trades_with_k():
    rows = _rq4(seq_math=0.2, dmt_math=0.45, dmt_general=0.6)
    assert study.forgetting(rows).verdict == "shown"
    dmt = study.dmt(rows)
    assert dmt.verdict == "partly shown", dmt.lab  # 3 values of k: no trend can reach p < 0.05
    assert "DMT(k=1/256)" in dmt.lab


def test_no_forgetting_within_noise():
    rows = _rq4(seq_math=0.47, dmt_math=0.45, dmt_general=0.6)
    assert study.forgetting(rows).verdict == "not shown"
    assert study.dmt(rows).verdict == "partly shown"  # general kept; specialized not above


def test_verdicts_list_only_what_the_rows_can_speak_to():
    rows = _rq4(seq_math=0.2, dmt_math=0.45, dmt_general=0.6)
    told = study.verdicts(rows, applicable_only=True)
    assert {v.finding for v in told} >= {"(d) forgetting", "(e) DMT"}
    assert all(v.verdict != "not applicable" for v in told)
    assert len(study.verdicts(rows)) == 5
