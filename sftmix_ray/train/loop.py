"""The SFT loop that runs inside each Ray Train worker: every stage of a plan, one process, no
restart."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..config.schema import TrainConfig
from ..data.tokenize import IGNORE, TokenizedDomain


@dataclass
class StageData:
    name: str
    samples: list[tuple[np.ndarray, np.ndarray]]  # (ids, labels) per sample
    epochs: int
    steps: int | None = None  # cap on optimizer steps


def length_grouped_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator,
                           group: int = 32) -> list[np.ndarray]:
    """Shuffle, then sort within groups of `group` batches: batches of similar lengths pad little,
    and their order stays random."""
    perm = rng.permutation(len(lengths))
    span = batch_size * group
    batches = []
    for s in range(0, len(perm), span):
        chunk = perm[s:s + span]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def collate(samples, pad_id: int):
    import torch

    width = max(len(ids) for ids, _ in samples)
    ids = torch.full((len(samples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(samples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(samples), width), dtype=torch.long)
    for r, (i, lab) in enumerate(samples):
        ids[r, :len(i)] = torch.from_numpy(i.astype(np.int64))
        labels[r, :len(lab)] = torch.from_numpy(lab.astype(np.int64))
        mask[r, :len(i)] = 1
    return ids, labels, mask


def random_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    perm = rng.permutation(n)
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]


def pack_rows(lengths: list[int], capacity: int) -> list[list[int]]:
    """First-fit decreasing: sample positions grouped into rows of at most `capacity` tokens."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        for r, free in enumerate(room):
            if lengths[i] <= free:
                rows[r].append(i)
                room[r] -= lengths[i]
                break
        else:
            rows.append([i])
            room.append(capacity - lengths[i])
    return rows


def collate_packed(samples, pad_id: int, capacity: int):
    """Several samples per row, no padding between them. Position ids restart at 0 for each
    sample; with no attention mask, transformers reads those restarts as sequence boundaries
    and attends block-diagonally (masking_utils.find_packed_sequence_indices), so no token sees
    another sample. Each sample's first label is dropped so nothing is trained across a seam."""
    import torch

    lengths = [len(ids) for ids, _ in samples]
    rows = pack_rows(lengths, max(capacity, max(lengths)))
    width = max(sum(lengths[i] for i in row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    pos = torch.zeros((len(rows), width), dtype=torch.long)
    real = 0
    for r, row in enumerate(rows):
        at = 0
        for i in row:
            s_ids, s_labels = samples[i]
            n = len(s_ids)
            ids[r, at:at + n] = torch.from_numpy(s_ids.astype(np.int64))
            labels[r, at + 1:at + n] = torch.from_numpy(s_labels[1:].astype(np.int64))
            pos[r, at:at + n] = torch.arange(n)
            at += n
        real += at
        pos[r, at:] = torch.arange(width - at)  # the tail pad is its own block, trained on nothing
    return ids, labels, pos, real


def lr_at(step: int, total: int, peak: float, warmup_ratio: float) -> float:
    """Linear warmup to `peak` over ceil(total × warmup_ratio) steps, then cosine to 0.

    Hand-written on purpose: transformers' `get_cosine_schedule_with_warmup` runs its warmup one
    step behind (its first step trains at lr 0; tests/train/test_loop.py shows the two agree
    only after the warmup), so switching would change every trained weight and recorded score."""
    warm = max(1, math.ceil(total * warmup_ratio))
    if step < warm:
        return peak * (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def amp_dtype(choice: str, device):
    """The autocast dtype for `train.dtype` (None: plain float32)."""
    import torch

    if choice == "float32":
        return None
    if choice == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def micro_batch_plan(stage: StageData, hp: TrainConfig, rng: np.random.Generator, rank: int,
                     world: int) -> tuple[list[np.ndarray], dict[int, int]]:
    """This rank's micro-batches for the whole stage, and the micro-batch index at which each
    epoch ends (epochs counted from 1)."""
    lengths = np.array([len(ids) for ids, _ in stage.samples])
    plan, epoch_ends = [], {}
    for epoch in range(stage.epochs):
        batches = random_batches(len(lengths), hp.batch_size * world, rng) if hp.packing else \
            length_grouped_batches(lengths, hp.batch_size * world, rng)
        # Every rank must take the same number of steps, or DDP waits forever.
        plan.extend(b[rank::world] for b in batches if len(b) >= world)
        epoch_ends[len(plan) - 1] = epoch + 1
    if stage.steps is not None:
        plan = plan[:stage.steps * hp.grad_accum]
    return plan, epoch_ends


def model_inputs(chosen, pad_id: int, packing: bool, device) -> tuple[dict, int]:
    """The forward pass's inputs for some samples, and how many real (non-pad) tokens they hold."""
    if packing:
        # Rows as wide as the batch's longest sample: never wider than the padded batch
        # would be, so attention costs no more per row while rows drop in number.
        ids, labels, pos, n_real = collate_packed(chosen, pad_id, 0)
        return {"input_ids": ids.to(device), "position_ids": pos.to(device),
                "labels": labels.to(device), "use_cache": False}, n_real
    ids, labels, mask = collate(chosen, pad_id)
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device),
            "labels": labels.to(device)}, int(mask.sum())


def forward_backward(model, inputs: dict, *, accum: int, sync: bool, autocast_dtype, device,
                     where: str):
    """One micro-batch's loss, backpropagated (scaled for accumulation); DDP's gradient sync
    only on the last micro-batch of a step."""
    import contextlib

    import torch

    no_sync = contextlib.nullcontext() if sync or not hasattr(model, "no_sync") \
        else model.no_sync()
    amp = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype \
        else contextlib.nullcontext()
    try:
        with no_sync:
            with amp:
                loss = model(**inputs).loss
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at {where}")
            (loss / accum).backward()
    except (torch.OutOfMemoryError, MemoryError) as exc:
        ids = inputs["input_ids"]
        raise RuntimeError(f"out of memory at {where} (micro-batch {ids.shape[0]} × "
                           f"{ids.shape[1]} tokens): lower train.batch_size, raise "
                           f"train.grad_accum or enable train.gradient_checkpointing") from exc
    return loss


def train_stage(model, stage: StageData, hp: TrainConfig, pad_id: int, *, index: int,
                rank: int = 0, world: int = 1, device=None, autocast_dtype=None,
                on_epoch_end=None) -> dict:
    """One stage as its own fine-tuning run: a fresh AdamW, warmup then cosine, batches drawn
    from a generator seeded by (seed, stage index). A stage therefore depends only on the weights
    it starts from, which is what lets the prefix cache resume at any stage boundary exactly.

    Raises FloatingPointError when the loss stops being finite, and a RuntimeError naming the
    remedies when memory runs out. `on_epoch_end(epoch)` is called after each epoch but the last
    (epochs counted from 1), e.g. to evaluate for pruning."""
    import torch

    device = device or torch.device("cpu")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)
    t0 = time.perf_counter()
    plan, epoch_ends = micro_batch_plan(stage, hp, np.random.default_rng([hp.seed, index]), rank,
                                        world)
    total_steps = max(1, math.ceil(len(plan) / hp.grad_accum))
    model.train()
    loss_sum, tokens, micro, step = 0.0, 0, 0, 0
    for i, idx in enumerate(plan):
        last_micro = (i + 1) % hp.grad_accum == 0 or i + 1 == len(plan)
        inputs, n_real = model_inputs([stage.samples[j] for j in idx], pad_id, hp.packing, device)
        loss = forward_backward(model, inputs, accum=hp.grad_accum, sync=last_micro,
                                autocast_dtype=autocast_dtype, device=device,
                                where=f"stage {stage.name!r} step {step}")
        loss_sum += loss.item()
        tokens += n_real
        micro += 1
        if last_micro:
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total_steps, hp.lr, hp.warmup_ratio)
            if hp.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, hp.max_grad_norm)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
        if on_epoch_end is not None and i in epoch_ends and i + 1 < len(plan):
            on_epoch_end(epoch_ends[i])
            model.train()
    return {"name": stage.name, "samples": len(stage.samples), "steps": step, "tokens": tokens,
            "loss": loss_sum / max(micro, 1), "seconds": time.perf_counter() - t0}


def select(domain: TokenizedDomain, indices) -> list[tuple[np.ndarray, np.ndarray]]:
    return [domain.sample(int(i)) for i in indices]
