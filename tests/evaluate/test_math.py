"""GSM8K answer extraction in both conventions (lm-eval's strict `#### N` and flexible last
number / "The answer is N"), and numeric comparison tolerant of formatting."""

import json

import pytest

from sftmix_ray.evaluate.math import (
    extract_flexible,
    extract_strict,
    reference_answer,
    same_number,
    score_math,
)

from ..conftest import GSM8K


@pytest.mark.parametrize("text,strict,flexible", [
    ("3 + 4 = 7\n#### 7", "7", "7"),
    ("She pays $1,234 in total.\n#### 1,234", "1,234", "1,234"),
    ("#### -5", "-5", "-5"),
    ("First 2, then 3. The answer is 12.", None, "12"),
    ("The answer is $45. Later I note 3 more.", None, "45"),
    ("So 10 apples. The answer is 10. No wait, the answer is 11.", None, "11"),
    ("#### 8\n#### 9", "8", "9"),  # strict takes the first mark, flexible the last number
    ("Total: 3.50 dollars", None, "3.50"),
    ("no digits at all", None, None),
])
def test_extraction_conventions(text, strict, flexible):
    assert extract_strict(text) == strict
    assert extract_flexible(text) == flexible


@pytest.mark.parametrize("pred,ref,same", [
    ("1,234", "1234", True), ("$5", "5", True), ("5.", "5", True), ("5.0", "5", True),
    ("-3", "-3", True), ("3", "-3", False), ("0.5", ".5", True), (None, "5", False),
    ("5,00", "500", True), ("abc", "5", False),
])
def test_numeric_comparison(pred, ref, same):
    assert same_number(pred, ref) is same


def test_both_conventions_are_scored_and_recorded():
    problems = [{"question": "q1", "answer": "... #### 12"}, {"question": "q2", "answer": "#### 3"}]
    scores, records = score_math(["work\n#### 12", "The answer is 3."], problems)
    assert scores == {"math": 0.5, "math_flexible": 1.0}
    assert records[1]["extracted_strict"] is None and records[1]["extracted_flexible"] == "3"
    assert {"prompt", "output", "reference", "correct"} <= set(records[0])


def test_every_gsm8k_test_reference_extracts_to_its_number():
    rows = [json.loads(line) for line in
            (GSM8K / "test.jsonl").read_text().splitlines() if line.strip()]
    assert len(rows) == 1319
    for row in rows:
        gold = row["answer"].split("####")[-1].strip()
        assert same_number(reference_answer(row["answer"]), gold)
        assert same_number(extract_flexible(row["answer"]), gold)  # the last number is the answer
