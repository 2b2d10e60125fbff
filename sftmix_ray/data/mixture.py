"""Mixture arithmetic: a ratio times an amount becomes exact per-domain counts; counts become
nested, seeded index selections."""

from __future__ import annotations

import hashlib
import math

import numpy as np


def apportion(ratio: dict[str, float], amount: int) -> dict[str, int]:
    """Largest-remainder rounding: counts sum to exactly `amount`; ties go to the earlier domain."""
    total = sum(ratio.values())
    if total <= 0:
        raise ValueError(f"ratio has no positive share: {ratio}")
    quotas = {d: amount * w / total for d, w in ratio.items()}
    counts = {d: math.floor(q) for d, q in quotas.items()}
    left = amount - sum(counts.values())
    order = sorted(ratio, key=lambda d: (-(quotas[d] - counts[d]), list(ratio).index(d)))
    for d in order[:left]:
        counts[d] += 1
    return counts


def domain_order(domain: str, pool_size: int, seed: int) -> np.ndarray:
    """A fixed permutation of a domain's pool. Every selection takes a prefix of it, so a smaller
    subset is always inside a larger one (as a scaling study needs) and a seed names it fully."""
    digest = hashlib.blake2b(f"{domain}/{seed}".encode(), digest_size=8).digest()
    return np.random.default_rng(int.from_bytes(digest, "big")).permutation(pool_size)


def select_prefix(order: np.ndarray, count: int, domain: str) -> np.ndarray:
    if count > len(order):
        raise ValueError(f"domain {domain!r}: asked for {count} samples but it has {len(order)}")
    return order[:count]
