"""MT-Bench (Zheng et al. 2023): 80 two-turn questions graded 1–10 by a judge model, single-answer
grading with FastChat's prompts. Questions in the reference categories (math, reasoning, coding)
are graded against GPT-4's reference answers. A rating the judge does not give in `[[n]]` form is
recorded as -1 and left out of the mean, as FastChat does; the count is reported.

A grade the judge fails (a refusal, tries spent, a malformed reply, a deadline passed) is recorded
the same way, with the reason, and counted apart: one bad grade must not throw away an
evaluation, but when more than `evaluate.judge.max_failed_share` of them fail the mean would say
little, and the evaluation stops with that share in its message."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from ..config import JudgeConfig
from ..redact import redact
from .judge import JudgeError, parse_rating

DATA = Path(__file__).parent / "mt_bench_data"
NEED_REF_CATS = {"math", "reasoning", "coding", "arena-hard-200"}
MAX_FAILED_SHARE = JudgeConfig.model_fields["max_failed_share"].default
log = logging.getLogger(__name__)


class JudgeFailures(JudgeError):
    """More grades failed than `max_failed_share` allows; `records` holds the grades made before
    it stopped. (Not a BenchmarkError: benchmarks.py imports this module.)"""

    def __init__(self, message: str, records: list[dict]):
        super().__init__(message)
        self.records = records


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


def score_mt_bench(items: list[dict], answers: list[list[str]], client, workers: int = 8,
                   max_failed_share: float = MAX_FAILED_SHARE) -> tuple[dict, list[dict]]:
    """`answers[i]` = [turn-1 answer, turn-2 answer]. Scores: `general` (mean of all valid
    ratings, 1–10), `mt_bench_turn1`, `mt_bench_turn2`, `mt_bench_unparsed` (the judge replied
    without a rating) and `general_judge_failures` (the judge gave no usable reply); JudgeFailures
    when the failures' share of all grades is more than `max_failed_share`."""
    jobs = [(item, ans, turn) for item, ans in zip(items, answers) for turn in (1, 2)]
    records = _grade_all(jobs, client, workers, max_failed_share)
    valid = [r for r in records if r["rating"] >= 0]
    failures = sum("error" in r for r in records)
    by_turn = {t: [r["rating"] for r in valid if r["turn"] == t] for t in (1, 2)}

    def mean(xs):
        return sum(xs) / len(xs) if xs else float("nan")

    return {"general": mean([r["rating"] for r in valid]), "mt_bench_turn1": mean(by_turn[1]),
            "mt_bench_turn2": mean(by_turn[2]),
            "mt_bench_unparsed": float(len(records) - len(valid) - failures),
            "general_judge_failures": float(failures)}, records


def _grade(client, item: dict, ans: list[str], turn: int) -> dict:
    system, user = grading_prompt(item, ans, turn)
    record = {"question_id": item["question_id"], "category": item["category"], "turn": turn,
              "prompt": item["turns"][turn - 1], "output": ans[turn - 1]}
    cut = getattr(client, "redact", redact)  # the client knows the key it sends
    try:
        judgment = client.complete(system, user)
    except Exception as exc:  # noqa: BLE001 - whatever fails, it is one failed grade
        reason = cut(str(exc) if isinstance(exc, JudgeError) else f"{type(exc).__name__}: {exc}")
        log.warning("MT-Bench judge failed question %s turn %d: %s", item["question_id"], turn,
                    reason)
        return {**record, "judgment": "", "rating": -1, "error": reason}
    rating = parse_rating(judgment)  # read first: cutting a short key out could cut a rating
    return {**record, "judgment": cut(judgment), "rating": rating if rating is not None else -1}


def _grade_all(jobs: list[tuple], client, workers: int, max_failed_share: float) -> list[dict]:
    """Every job's record, in job order. Stops as soon as the failures alone exceed the share:
    the outcome is settled then, and a dead judge would otherwise be retried for every grade."""
    records: list[dict | None] = [None] * len(jobs)
    failed = 0
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        futures = {pool.submit(_grade, client, *job): i for i, job in enumerate(jobs)}
        for future in as_completed(futures):
            records[futures[future]] = record = future.result()
            failed += "error" in record
            if failed / len(jobs) > max_failed_share:
                done = [r for r in records if r is not None]
                raise JudgeFailures(_too_many(failed, len(jobs), len(done), max_failed_share,
                                              record), done)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # grades not yet started never start
    return records


def _too_many(failed: int, total: int, graded: int, limit: float, last: dict) -> str:
    stopped = f", stopped after {graded} of them" if graded < total else ""
    return (f"MT-Bench judge: {failed} of {total} grades failed ({failed / total:.1%}), more "
            f"than evaluate.judge.max_failed_share = {limit:.1%}{stopped}; e.g. question "
            f"{last['question_id']} turn {last['turn']}: {last['error']}")
