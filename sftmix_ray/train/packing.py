"""Packing that fills rows of exactly `max_length` tokens, for GPU throughput.

Each epoch's samples are shuffled, cut into windows of `batch_size × 32` samples (as
length-grouped batching groups them) and packed first-fit-decreasing within each window into
rows of `max_length` tokens; the rows are shuffled and dealt into micro-batches of a fixed number
of rows, so every micro-batch has the same shape (no allocator churn, one compiled graph). The
row count is chosen so a micro-batch holds about `batch_size` samples' tokens: a step sees about
as much data as it would unpacked, and the number of steps (hence the schedule) stays close.
Attention stays inside each sample: position ids restart at 0 per sample and no attention mask
is passed, which transformers reads as packed sequences (masking_utils.
find_packed_sequence_indices): a block-diagonal causal mask for sdpa/eager/flex, varlen for
flash attention. Each sample's first label is dropped so nothing is trained across a seam.
"""

from __future__ import annotations

import numpy as np

from ..data.tokenize import IGNORE

WINDOW_BATCHES = 32


def rows_per_batch(lengths: np.ndarray, batch_size: int, capacity: int) -> int:
    return max(1, round(batch_size * float(np.mean(lengths)) / capacity)) if len(lengths) else 1


def pack_window(lengths: np.ndarray, order: np.ndarray, capacity: int) -> list[np.ndarray]:
    """First-fit decreasing of the samples `order` (indices into `lengths`) into rows."""
    order = order[np.argsort(-lengths[order], kind="stable")]
    room = np.empty(len(order), dtype=np.int64)
    rows: list[list[int]] = []
    for i in order:
        n = int(lengths[i])
        fits = np.flatnonzero(room[:len(rows)] >= n)
        if len(fits):
            rows[fits[0]].append(int(i))
            room[fits[0]] -= n
        else:
            room[len(rows)] = capacity - n
            rows.append([int(i)])
    return [np.asarray(r, dtype=np.int64) for r in rows]


def packed_plan(lengths: np.ndarray, batch_size: int, capacity: int, epochs: int,
                rng: np.random.Generator, rank: int, world: int):
    """This rank's micro-batches (each a list of rows, each row an array of sample indices) for
    `epochs` epochs, and the micro-batch index at which each epoch ends (epochs counted from 1).
    Every rank gets the same number of rows per micro-batch: short ones are filled with empty
    rows (all padding, no labels)."""
    per_rank = rows_per_batch(lengths, batch_size, capacity)
    span = batch_size * WINDOW_BATCHES
    plan, epoch_ends = [], {}
    empty = np.zeros(0, dtype=np.int64)
    for epoch in range(epochs):
        perm = rng.permutation(len(lengths))
        rows = [r for s in range(0, len(perm), span)
                for r in pack_window(lengths, perm[s:s + span], capacity)]
        rows = [rows[i] for i in rng.permutation(len(rows))]
        step = per_rank * world
        for s in range(0, len(rows), step):
            chunk = rows[s:s + step]
            chunk += [empty] * (step - len(chunk))
            plan.append(chunk[rank::world])
        epoch_ends[len(plan) - 1] = epoch + 1
    return plan, epoch_ends


def collate_rows(rows: list[list[tuple[np.ndarray, np.ndarray]]], pad_id: int, width: int):
    """(ids, labels, position_ids, real tokens) for rows of samples, each row `width` wide."""
    import torch

    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    pos = torch.zeros((len(rows), width), dtype=torch.long)
    real = 0
    for r, row in enumerate(rows):
        at = 0
        for s_ids, s_labels in row:
            n = len(s_ids)
            ids[r, at:at + n] = torch.from_numpy(s_ids.astype(np.int64))
            labels[r, at + 1:at + n] = torch.from_numpy(s_labels[1:].astype(np.int64))
            pos[r, at:at + n] = torch.arange(n)
            at += n
        real += at
        pos[r, at:] = torch.arange(width - at)  # the tail pad is its own block, trained on nothing
    return ids, labels, pos, real
