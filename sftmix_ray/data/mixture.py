"""Mixture arithmetic: a mixture becomes exact per-domain counts; counts become nested, seeded
index selections.

A mixture has one of three meanings, never mixed (mosaicml streaming's proportion / repeat /
choose, in the study's terms):
- ``ratio`` × ``amount``: shares of a total, apportioned so the counts sum to exactly the amount;
- ``fractions``: a fraction of each domain (the study's 1, 1/4, ..., 1/256);
- ``counts``: an absolute number of samples per domain.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from ..digests import bytes_digest

MIXTURE_KINDS = ("ratio", "fractions", "counts")


class MixtureError(ValueError):
    pass


def apportion(ratio: dict[str, float], amount: int) -> dict[str, int]:
    """Largest-remainder rounding: counts sum to exactly `amount`; ties go to the earlier domain."""
    total = sum(ratio.values())
    if total <= 0:
        raise MixtureError(f"ratio has no positive share: {ratio}")
    quotas = {d: amount * w / total for d, w in ratio.items()}
    counts = {d: math.floor(q) for d, q in quotas.items()}
    left = amount - sum(counts.values())
    order = sorted(ratio, key=lambda d: (-(quotas[d] - counts[d]), list(ratio).index(d)))
    for d in order[:left]:
        counts[d] += 1
    return counts


def fraction_count(fraction: float, size: int, domain: str) -> int:
    """Half-up rounding of fraction × size; a positive fraction that rounds to no sample is an
    error, because silently training on nothing would pass for a data point."""
    n = math.floor(fraction * size + 0.5)
    if fraction > 0 and n == 0:
        raise MixtureError(f"domain {domain!r}: fraction {fraction:g} of {size} samples rounds "
                           f"to 0 (enlarge the domain, e.g. its lab pool, or raise the fraction)")
    return n


def mixture_kind(point: dict) -> str:
    kinds = [k for k in ("fractions", "counts") if point.get(k) is not None]
    if point.get("ratio") is not None or point.get("amount") is not None:
        kinds.append("ratio")
    if len(kinds) != 1:
        raise MixtureError(f"a mixture is exactly one of ratio×amount, fractions or counts; "
                           f"got {kinds or 'none'}")
    return kinds[0]


def resolve_counts(point: dict, domains: list[str], sizes: dict[str, int],
                   upsample: dict[str, bool]) -> dict[str, int]:
    """Exact per-domain sample counts of a mixture, checked against what each domain holds."""
    kind = mixture_kind(point)
    if kind == "ratio":
        counts = apportion({d: point["ratio"].get(d, 0.0) for d in domains}, int(point["amount"]))
    elif kind == "fractions":
        unknown = set(point["fractions"]) - set(domains)
        if unknown:
            raise MixtureError(f"fractions name undeclared domains {sorted(unknown)}")
        counts = {d: fraction_count(point["fractions"].get(d, 0.0), sizes[d], d) for d in domains}
    else:
        unknown = set(point["counts"]) - set(domains)
        if unknown:
            raise MixtureError(f"counts name undeclared domains {sorted(unknown)}")
        counts = {d: int(point["counts"].get(d, 0)) for d in domains}
    if sum(counts.values()) == 0:
        raise MixtureError(f"the mixture selects no samples: {point}")
    for d, n in counts.items():
        if n < 0:
            raise MixtureError(f"domain {d!r}: negative count {n}")
        if n > sizes[d] and not upsample.get(d, False):
            raise MixtureError(f"domain {d!r}: the mixture asks for {n} samples but it has "
                               f"{sizes[d]} (set domains.{d}.upsample: true to repeat it, enlarge "
                               f"the domain, or ask for less)")
    return counts


def domain_order(domain: str, pool_size: int, seed: int) -> np.ndarray:
    """A fixed permutation of a domain's pool. Every selection takes a prefix of it, so a smaller
    subset is always inside a larger one (as a scaling study needs) and a seed names it fully."""
    digest = hashlib.blake2b(f"{domain}/{seed}".encode(), digest_size=8).digest()
    return np.random.default_rng(int.from_bytes(digest, "big")).permutation(pool_size)


def select_indices(domain: str, size: int, count: int, seed: int) -> np.ndarray:
    """The first `count` samples of the domain's seeded order. Past the domain's size (only when
    upsampling was allowed) the order repeats whole, so every sample is seen equally often
    before any is seen again, and nesting still holds."""
    order = domain_order(domain, size, seed)
    if count <= size:
        return order[:count]
    if size == 0:
        raise MixtureError(f"domain {domain!r} has no samples to upsample")
    return np.resize(order, count)


def selection_digest(indices: np.ndarray) -> str:
    return bytes_digest(np.ascontiguousarray(indices, dtype=np.int64).tobytes())
