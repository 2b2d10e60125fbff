"""GSM8K-style answer extraction (lm-eval conventions) and numeric comparison."""

from __future__ import annotations

import re

_STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
_ANSWER_IS = re.compile(r"[Tt]he answer is:? \$?(\-?[0-9\.\,]*[0-9])")
_NUMBER = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")


def _normalize(num: str) -> float | None:
    cleaned = num.replace(",", "").replace("$", "").rstrip(".")
    try:
        return float(cleaned)
    except ValueError:
        return None


def extract_strict(text: str) -> str | None:
    m = _STRICT.search(text)
    return m.group(1) if m else None


def extract_flexible(text: str) -> str | None:
    stated = _ANSWER_IS.findall(text)
    if stated:  # the CoT convention: the last "The answer is N" wins over stray numbers
        return stated[-1]
    found = [a or b for a, b in _NUMBER.findall(text)]
    found = [f for f in found if _normalize(f) is not None]
    return found[-1] if found else None


def reference_answer(gsm8k_answer: str) -> str:
    ref = extract_strict(gsm8k_answer)
    if ref is None:
        raise ValueError(f"reference answer has no '#### N': {gsm8k_answer[-60:]!r}")
    return ref


def same_number(pred: str | None, ref: str) -> bool:
    if pred is None:
        return False
    a, b = _normalize(pred), _normalize(ref)
    return a is not None and b is not None and abs(a - b) < 1e-6


def score_math(outputs: list[str], problems: list[dict]) -> tuple[dict, list[dict]]:
    records, strict_hits, flex_hits = [], 0, 0
    for out, prob in zip(outputs, problems):
        ref = reference_answer(prob["answer"])
        s, f = extract_strict(out), extract_flexible(out)
        ok_s, ok_f = same_number(s, ref), same_number(f, ref)
        strict_hits += ok_s
        flex_hits += ok_f
        records.append({"prompt": prob["question"], "output": out, "reference": ref,
                        "extracted_strict": s, "extracted_flexible": f, "correct": ok_s})
    n = max(len(problems), 1)
    return {"math": strict_hits / n, "math_flexible": flex_hits / n}, records
