"""The SFT loop that runs inside each Ray Train worker: every stage of a plan, one process, no
restart."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..config.schema import TrainConfig
from ..data.tokenize import IGNORE, TokenizedDomain
from .packing import collate_rows, packed_plan


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
    """Several samples per row (first-fit decreasing into rows of `capacity`, or of the longest
    sample if longer), no padding between them; see packing.collate_rows for the row format."""
    lengths = [len(ids) for ids, _ in samples]
    rows = pack_rows(lengths, max(capacity, max(lengths)))
    width = max(sum(lengths[i] for i in row) for row in rows)
    return collate_rows([[samples[i] for i in row] for row in rows], pad_id, width)


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
                     world: int, packing: bool = False) -> tuple[list, dict[int, int]]:
    """This rank's micro-batches for the whole stage, and the micro-batch index at which each
    epoch ends (epochs counted from 1). A micro-batch is an array of sample indices, or with
    `packing` a list of rows of them (packing.packed_plan)."""
    lengths = np.array([len(ids) for ids, _ in stage.samples])
    if packing:
        plan, epoch_ends = packed_plan(lengths, hp.batch_size, hp.max_length, stage.epochs, rng,
                                       rank, world)
    else:
        plan, epoch_ends = [], {}
        for epoch in range(stage.epochs):
            batches = length_grouped_batches(lengths, hp.batch_size * world, rng)
            # Every rank must take the same number of steps, or DDP waits forever.
            plan.extend(b[rank::world] for b in batches if len(b) >= world)
            epoch_ends[len(plan) - 1] = epoch + 1
    if stage.steps is not None:
        plan = plan[:stage.steps * hp.grad_accum]
    return plan, epoch_ends


def _to(t, device):
    """Host to device; on a GPU from pinned memory without waiting, so the copy of the next
    batch overlaps the step in flight."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def model_inputs(stage: StageData, batch, pad_id: int, packing: bool, capacity: int,
                 device) -> tuple[dict, int]:
    """The forward pass's inputs for one micro-batch, and how many real (non-pad) tokens they
    hold. Packed rows are `capacity` wide (wider only for a sample longer than that)."""
    if packing:
        rows = [[stage.samples[j] for j in row] for row in batch]
        width = max([capacity] + [sum(len(i) for i, _ in row) for row in rows])
        ids, labels, pos, n_real = collate_rows(rows, pad_id, width)
        return {"input_ids": _to(ids, device), "position_ids": _to(pos, device),
                "labels": _to(labels, device), "use_cache": False}, n_real
    ids, labels, mask = collate([stage.samples[j] for j in batch], pad_id)
    return {"input_ids": _to(ids, device), "attention_mask": _to(mask, device),
            "labels": _to(labels, device)}, int(mask.sum())


def forward_backward(model, inputs: dict, *, accum: int, sync: bool, autocast_dtype, device,
                     where: str, check: bool = True):
    """One micro-batch's loss, backpropagated (scaled for accumulation); gradients reduced
    across workers (DDP's all-reduce, FSDP's reduce-scatter) only on the last micro-batch of a
    step. `check`: stop on a non-finite loss before its backward (a read-back: free on CPU, a
    stall on a GPU, where LossMeter checks instead)."""
    import contextlib

    import torch

    from .parallel import set_gradient_sync

    set_gradient_sync(model, sync)
    no_sync = contextlib.nullcontext() if sync or not hasattr(model, "no_sync") \
        else model.no_sync()
    amp = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype \
        else contextlib.nullcontext()
    try:
        with no_sync:
            with amp:
                loss = model(**inputs).loss
            if check and not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at {where}")
            (loss / accum).backward()
    except (torch.OutOfMemoryError, MemoryError) as exc:
        ids = inputs["input_ids"]
        raise RuntimeError(f"out of memory at {where} (micro-batch {ids.shape[0]} × "
                           f"{ids.shape[1]} tokens): lower train.batch_size, raise "
                           f"train.grad_accum or enable train.gradient_checkpointing") from exc
    return loss


class LossMeter:
    """A stage's summed loss, kept on the device and read back once at the end: on a GPU a
    read-back per step would stall the host on every kernel in flight. A non-finite loss is
    looked for every `every` micro-batches there (one read-back each time)."""

    def __init__(self, device, stage: str, every: int = 32):
        import torch

        self.total = torch.zeros((), dtype=torch.float64, device=device)
        self.bad = torch.zeros((), dtype=torch.bool, device=device)
        self.stage, self.every, self.count, self.since = stage, every, 0, 0

    def add(self, loss, step: int) -> None:
        import torch

        self.total += loss.detach().double()
        self.bad |= ~torch.isfinite(loss.detach())
        self.count += 1
        if self.count % self.every == 0:
            self.check(step)

    def check(self, step: int) -> None:
        if bool(self.bad):
            raise FloatingPointError(f"loss became non-finite at stage {self.stage!r} between "
                                     f"steps {self.since} and {step}")
        self.since = step

    def mean(self) -> float:
        return float(self.total) / max(self.count, 1)


def ahead(plan, make):
    """`make(batch)` for each batch, one batch ahead: the next batch is collated and on its way
    to the device before the current one's step is queued."""
    following = make(plan[0]) if plan else None
    for k in range(len(plan)):
        current, following = following, make(plan[k + 1]) if k + 1 < len(plan) else None
        yield current


def train_stage(model, stage: StageData, hp: TrainConfig, pad_id: int, *, index: int,
                rank: int = 0, world: int = 1, device=None, autocast_dtype=None,
                on_epoch_end=None, speed=None, on_step=None) -> dict:
    """One stage as its own fine-tuning run: a fresh AdamW, warmup then cosine, batches drawn
    from a generator seeded by (seed, stage index), and every global RNG seeded from them too
    (rng.seed_stage). A stage therefore depends only on the weights it starts from, which is
    what lets the prefix cache resume at any stage boundary exactly.

    `model` is what the loop calls for a loss (speed.train_module). `speed`: the resolved GPU
    options (speed.resolve_speed; default: resolved for `device`). Raises FloatingPointError
    when the loss stops being finite, and a RuntimeError naming the remedies when memory runs
    out. `on_epoch_end(epoch)` is called after each epoch but the last (epochs counted from 1),
    e.g. to evaluate for pruning. `on_step(step, total_steps, loss)` after each optimizer
    step (the micro-batch's loss tensor, not read back here): the lab base build's progress."""
    import torch

    from .rng import seed_stage
    from .speed import make_optimizer, resolve_speed

    device = device or torch.device("cpu")
    speed = speed or resolve_speed(hp, device)
    seed_stage(hp.seed, index, rank)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(params, hp, speed)
    t0 = time.perf_counter()
    plan, epoch_ends = micro_batch_plan(stage, hp, np.random.default_rng([hp.seed, index]), rank,
                                        world, speed.packing)
    total_steps = max(1, math.ceil(len(plan) / hp.grad_accum))
    model.train()
    meter = LossMeter(device, stage.name, every=1 if device.type == "cpu" else 32)
    batches = ahead(plan, lambda b: model_inputs(stage, b, pad_id, speed.packing, hp.max_length,
                                                 device))
    tokens, positions, step = 0, 0, 0
    for i, (inputs, n_real) in enumerate(batches):
        last_micro = (i + 1) % hp.grad_accum == 0 or i + 1 == len(plan)
        loss = forward_backward(model, inputs, accum=hp.grad_accum, sync=last_micro,
                                autocast_dtype=autocast_dtype, device=device,
                                where=f"stage {stage.name!r} step {step}", check=not speed.cuda)
        meter.add(loss, step)
        tokens += n_real
        positions += inputs["input_ids"].numel()
        if last_micro:
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total_steps, hp.lr, hp.warmup_ratio)
            if hp.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, hp.max_grad_norm)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            if on_step is not None:
                on_step(step, total_steps, loss)
        if on_epoch_end is not None and i in epoch_ends and i + 1 < len(plan):
            on_epoch_end(epoch_ends[i])
            model.train()
    meter.check(step)
    return {"name": stage.name, "samples": len(stage.samples), "steps": step, "tokens": tokens,
            "positions": positions, "loss": meter.mean(), "seconds": time.perf_counter() - t0}


def select(domain: TokenizedDomain, indices) -> list[tuple[np.ndarray, np.ndarray]]:
    return [domain.sample(int(i)) for i in indices]
