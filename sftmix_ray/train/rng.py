"""Per-stage seeding of every random number generator a stage may draw from.

A stage must continue exactly as if trained straight through when its starting weights come from
the prefix cache. Its batch order has its own generator (loop.micro_batch_plan), but dropout
(LoRA's, or a model's own) draws from torch's global generators, whose state after a skipped
stage would otherwise differ from the state after a trained one (measured on an H100: resumed vs
straight-through differed by 1e-4, the size of the whole update). So each stage starts from
states derived from (seed, stage index, rank) alone: torch CPU and CUDA, numpy's global one and
Python's `random`. Ranks get distinct streams so DDP replicas draw different dropout masks.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np


def stage_seed(seed: int, index: int, rank: int = 0) -> int:
    digest = hashlib.blake2b(f"sftmix-stage/{seed}/{index}/{rank}".encode(),
                             digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1  # < 2**63: every generator accepts it


def seed_stage(seed: int, index: int, rank: int = 0) -> int:
    """Seed every generator for stage `index`; returns the seed used."""
    import torch

    value = stage_seed(seed, index, rank)
    torch.manual_seed(value)  # the CPU generator and every CUDA device's
    np.random.seed(value % 2 ** 32)
    random.seed(value)
    return value
