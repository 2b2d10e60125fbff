"""MT-Bench (Zheng et al. 2023): 80 two-turn questions graded 1–10 by a judge model, single-answer
grading with FastChat's prompts. Questions in the reference categories (math, reasoning, coding)
are graded against GPT-4's reference answers. A rating the judge does not give in `[[n]]` form is
recorded as -1 and left out of the mean, as FastChat does; the count is reported."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

DATA = Path(__file__).parent / "mt_bench_data"
NEED_REF_CATS = {"math", "reasoning", "coding", "arena-hard-200"}


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_mt_bench() -> list[dict]:
    """Questions with their reference answers: {question_id, category, turns, reference}."""
    refs = {r["question_id"]: r["choices"][0]["turns"]
            for r in _jsonl(DATA / "reference_answer" / "gpt-4.jsonl")}
    return [{"question_id": q["question_id"], "category": q["category"], "turns": q["turns"],
             "reference": refs.get(q["question_id"])} for q in _jsonl(DATA / "question.jsonl")]


def judge_prompts() -> dict[str, dict]:
    return {p["name"]: p for p in _jsonl(DATA / "judge_prompts.jsonl")}


def grading_prompt(item: dict, answers: list[str], turn: int) -> tuple[str, str]:
    """(system, user) for grading `turn` (1 or 2), as FastChat's single-answer grading builds it."""
    needs_ref = item["category"] in NEED_REF_CATS and item.get("reference")
    name = ("single-math-v1" if needs_ref else "single-v1") + \
        ("-multi-turn" if turn == 2 else "")
    prompt = judge_prompts()[name]
    q, ref = item["turns"], item.get("reference") or ["", ""]
    if turn == 1:
        fields = {"question": q[0], "answer": answers[0], "ref_answer_1": ref[0]}
    else:
        fields = {"question_1": q[0], "question_2": q[1], "answer_1": answers[0],
                  "answer_2": answers[1], "ref_answer_1": ref[0], "ref_answer_2": ref[1]}
    return prompt["system_prompt"], prompt["prompt_template"].format(**fields)


def score_mt_bench(items: list[dict], answers: list[list[str]], client,
                   workers: int = 8) -> tuple[dict, list[dict]]:
    """`answers[i]` = [turn-1 answer, turn-2 answer]. Scores: `general` (mean of all valid
    ratings, 1–10), `mt_bench_turn1`, `mt_bench_turn2`, and `mt_bench_unparsed`."""
    from .judge import parse_rating

    jobs = [(item, ans, turn) for item, ans in zip(items, answers) for turn in (1, 2)]

    def grade(job):
        item, ans, turn = job
        system, user = grading_prompt(item, ans, turn)
        judgment = client.complete(system, user)
        rating = parse_rating(judgment)
        return {"question_id": item["question_id"], "category": item["category"], "turn": turn,
                "prompt": item["turns"][turn - 1], "output": ans[turn - 1],
                "judgment": judgment, "rating": rating if rating is not None else -1}

    with ThreadPoolExecutor(max_workers=workers) as pool:
        records = list(pool.map(grade, jobs))
    valid = [r for r in records if r["rating"] >= 0]
    by_turn = {t: [r["rating"] for r in valid if r["turn"] == t] for t in (1, 2)}

    def mean(xs):
        return sum(xs) / len(xs) if xs else float("nan")

    return {"general": mean([r["rating"] for r in valid]), "mt_bench_turn1": mean(by_turn[1]),
            "mt_bench_turn2": mean(by_turn[2]),
            "mt_bench_unparsed": float(len(records) - len(valid))}, records
