"""The offline general score: token-level F1 against reference answers, in [0, 1].

It is a proxy labelled as such (metric `general`, tag `general_scorer=offline-reference-f1`), never
reported as MT-Bench, which needs a judge model.
"""

from __future__ import annotations

import re
from collections import Counter

SCORER_NAME = "offline-reference-f1"
_TOKEN = re.compile(r"\w+|[^\w\s]")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = _tokens(prediction), _tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def score_general(outputs: list[str], chats: list[dict]) -> tuple[dict, list[dict]]:
    records, total = [], 0.0
    for out, chat in zip(outputs, chats):
        question = chat["conversations"][0]["value"]
        reference = chat["conversations"][1]["value"]
        f1 = token_f1(out, reference)
        total += f1
        records.append({"prompt": question, "output": out, "reference": reference, "f1": f1})
    return {"general": total / max(len(chats), 1)}, records


def score_reference_f1(items: list[dict], outputs: list[list[str]]) -> tuple[dict, list[dict]]:
    """MT-Bench without a judge: token F1 of each turn against the reference answer, over the
    questions that have one (math, reasoning, coding). A stand-in only, never called MT-Bench."""
    records, f1s = [], []
    for item, answers in zip(items, outputs):
        refs = item.get("reference") or []
        for turn, answer in enumerate(answers):
            ref = refs[turn] if turn < len(refs) else None
            f1 = token_f1(answer, ref) if ref else None
            if f1 is not None:
                f1s.append(f1)
            records.append({"question_id": item["question_id"], "turn": turn + 1,
                            "prompt": item["turns"][turn], "output": answer, "reference": ref,
                            "f1": f1})
    return {"general": sum(f1s) / len(f1s) if f1s else 0.0,
            "general_references": float(len(f1s))}, records
