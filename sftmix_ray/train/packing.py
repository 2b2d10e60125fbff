"""Packing: several samples share a row of at most `max_length` tokens, and a micro-batch still
holds `batch_size` samples, so an optimizer step consumes batch_size × grad_accum × workers
samples as it does unpacked (the study's global batch), with the same schedule of steps.

Each epoch's samples are shuffled and taken in that order, `batch_size` at a time, into a
micro-batch of a fixed number of rows (first fit, each row at most `max_length` tokens; a sample
longer than that gets a row of its own). A sample that fits none of the rows waits for the next
micro-batch, which takes it first; so a micro-batch holds at most `batch_size` samples and on
average nearly that many. The row count is the smallest at which a micro-batch of batch_size
samples of this data fits with few samples waiting (`rows_per_batch`), so every micro-batch has
the same shape (no allocator churn, one compiled graph); the rows are not filled to the brim
when batch_size samples are fewer tokens than the rows hold: packing keeps the batch, and saves
only the padding that batching by length would spend on rows as wide as their longest sample.
Micro-batches are dealt to the ranks in turn, every rank the same number per epoch.

Attention stays inside each sample: position ids restart at 0 per sample and no attention mask
is passed, which transformers reads as packed sequences (masking_utils.
find_packed_sequence_indices): a block-diagonal causal mask for sdpa/eager/flex, varlen for
flash attention. Each sample's first label is dropped so nothing is trained across a seam.
"""

from __future__ import annotations

import numpy as np

from ..data.tokenize import IGNORE

MIN_FILL = 0.97  # a micro-batch holds at least this share of batch_size samples on average
PROBE_BATCHES = 64  # micro-batches simulated to choose the row count


class _MicroBatch:
    """Rows being filled: first fit, a sample longer than a row alone in an empty one."""

    def __init__(self, rows: int, capacity: int):
        self.members: list[list[int]] = [[] for _ in range(rows)]
        self.room = [capacity] * rows
        self.capacity = capacity

    def place(self, i: int, n: int, grow: bool = False) -> bool:
        for r, room in enumerate(self.room):
            if n <= room or (room == self.capacity and not self.members[r]):
                self.members[r].append(i)
                self.room[r] = room - n
                return True
        if grow:
            self.members.append([i])
            self.room.append(self.capacity - n)
        return grow

    @property
    def samples(self) -> int:
        return sum(len(m) for m in self.members)

    def rows(self) -> list[np.ndarray]:
        return [np.asarray(m, dtype=np.int64) for m in self.members]


def fill(order: np.ndarray, lengths: np.ndarray, batch_size: int, rows: int,
         capacity: int) -> list[_MicroBatch]:
    """The samples `order` in micro-batches of `rows` rows and at most `batch_size` samples;
    a sample that fits no row waits for the next micro-batch (at most one new one a batch, so
    the order stays nearly the shuffled one)."""
    out: list[_MicroBatch] = []
    waiting: list[int] = []
    pos = 0
    while pos < len(order) or waiting:
        mb, still = _MicroBatch(rows, capacity), []
        for i in waiting:
            if mb.samples < batch_size and mb.place(i, int(lengths[i])):
                continue
            still.append(i)
        while mb.samples < batch_size and pos < len(order):
            i = int(order[pos])
            pos += 1
            if not mb.place(i, int(lengths[i])):
                still.append(i)
                break
        waiting = still
        out.append(mb)
    return out


def rows_per_batch(lengths: np.ndarray, batch_size: int, capacity: int) -> int:
    """The fewest rows of `capacity` tokens at which micro-batches of this data hold at least
    MIN_FILL × batch_size samples on average (simulated on a fixed draw of the lengths, so every
    rank finds the same count)."""
    if not len(lengths):
        return 1
    draw = np.random.default_rng(0).choice(len(lengths), size=batch_size * PROBE_BATCHES)
    probe = lengths[draw]
    rows = max(1, int(np.ceil(batch_size * float(np.mean(lengths)) / capacity)))
    while rows < batch_size:
        batches = fill(np.arange(len(probe)), probe, batch_size, rows, capacity)
        if len(probe) / len(batches) >= MIN_FILL * batch_size:
            break
        rows += 1
    return rows


def _deal_last_step(batches: list[_MicroBatch], lengths: np.ndarray, world: int,
                    rows: int, capacity: int) -> list[_MicroBatch]:
    """Make the epoch's micro-batch count a multiple of `world` without an empty micro-batch
    where it can: the last, incomplete step's samples are dealt over `world` micro-batches (or,
    fewer samples than ranks, added to the step before)."""
    extra = len(batches) % world
    if not extra:
        return batches
    tail = [i for mb in batches[-extra:] for m in mb.members for i in m]
    head = batches[:-extra]
    if len(tail) < world and head:
        for k, i in enumerate(tail):
            head[-world + k].place(i, int(lengths[i]), grow=True)
        return head
    tail.sort(key=lambda i: -int(lengths[i]))
    last = [_MicroBatch(rows, capacity) for _ in range(world)]
    for k, i in enumerate(tail):
        last[k % world].place(i, int(lengths[i]), grow=True)
    return head + last


def packed_plan(lengths: np.ndarray, batch_size: int, capacity: int, epochs: int,
                rng: np.random.Generator, rank: int, world: int):
    """This rank's micro-batches (each a list of rows, each row an array of sample indices) for
    `epochs` epochs, and the micro-batch index at which each epoch ends (epochs counted from 1).
    Every rank gets the same number of micro-batches, each of the same number of rows (empty
    rows are all padding, no labels), but for the epoch's last step, which may take a row more."""
    rows = rows_per_batch(lengths, batch_size, capacity)
    plan, epoch_ends = [], {}
    for epoch in range(epochs):
        batches = fill(rng.permutation(len(lengths)), lengths, batch_size, rows, capacity)
        batches = _deal_last_step(batches, lengths, world, rows, capacity)
        plan.extend(mb.rows() for mb in batches[rank::world])
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
