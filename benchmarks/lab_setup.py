"""The sweep the benchmarks share: lab code and general (4,000 each), math from the lab or from
real GSM8K train, the quickstart's tiny Llama shape; one epoch, batch 16."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sftmix_ray.config import SweepConfig  # noqa: E402

GSM8K = ROOT / "tests" / "fixtures" / "gsm8k" / "train.jsonl"
DOMAINS = ("math", "code", "general")


def bench_sweep(storage, *, real_math: bool, layers: int = 4, max_length: int = 256
                ) -> SweepConfig:
    math = {"source": str(GSM8K), "format": "gsm8k"} if real_math else \
        {"source": "lab", "pool": 4000}
    return SweepConfig.model_validate({
        "name": "bench", "storage": str(storage),
        "domains": {"math": math, "code": {"source": "lab", "pool": 4000},
                    "general": {"source": "lab", "pool": 4000}},
        "model": {"tiny": {"hidden_size": 128, "intermediate_size": 256, "layers": layers,
                           "heads": 4}, "lab_vocab_size": 1024},
        "train": {"lr": 5e-3, "epochs": 1, "batch_size": 16, "max_length": max_length},
        "search": {"space": "unused.yaml"}})
