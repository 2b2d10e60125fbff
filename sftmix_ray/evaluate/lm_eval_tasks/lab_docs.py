"""The documents of the lab's lm-eval tasks, built by the lab's own generator (the same held-out
math problems `evaluate.math` with source 'lab' scores), and the lab's prompt: the Vicuna
template's one-turn prompt, as sftmix's own generation sees it."""

from __future__ import annotations

from sftmix_ray.data.lab import lab_eval
from sftmix_ray.evaluate.math import reference_answer


def math_dataset(n: int = 64, **_metadata):
    """{'test': the first n held-out lab math problems} (lm-eval's custom_dataset hook)."""
    import datasets

    rows = [{"question": p["question"], "answer": p["answer"],
             "reference": reference_answer(p["answer"])} for p in lab_eval("math", n)]
    return {"test": datasets.Dataset.from_list(rows)}


def math_prompt(doc: dict) -> str:
    return f"USER: {doc['question']}\nASSISTANT:"


def math_target(doc: dict) -> str:
    return doc["reference"]


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _shift(doc: dict) -> int:
    return int(abs(_number(doc["reference"]))) % 4


def _show(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v}"


def math_choices(doc: dict) -> list[str]:
    """The reference and three wrong numbers near it, rotated by an amount the answer fixes."""
    ref = _number(doc["reference"])
    values = [ref, ref + 1, ref - 1, ref * 2 if ref not in (0, 1, 2) else ref + 3]
    values = values[_shift(doc):] + values[:_shift(doc)]
    return [f" #### {_show(v)}" for v in values]


def math_choice_index(doc: dict) -> int:
    return (4 - _shift(doc)) % 4
