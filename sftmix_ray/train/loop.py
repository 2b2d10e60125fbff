"""The SFT loop that runs inside each Ray Train worker: every stage of a plan, one process, no restart."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..data.tokenize import IGNORE, TokenizedDomain


@dataclass
class StageData:
    name: str
    samples: list[tuple[np.ndarray, np.ndarray]]  # (ids, labels) per sample
    epochs: int


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
    for r, (i, l) in enumerate(samples):
        ids[r, :len(i)] = torch.from_numpy(i.astype(np.int64))
        labels[r, :len(l)] = torch.from_numpy(l.astype(np.int64))
        mask[r, :len(i)] = 1
    return ids, labels, mask


def lr_at(step: int, total: int, peak: float, warmup_ratio: float) -> float:
    warm = max(1, math.ceil(total * warmup_ratio))
    if step < warm:
        return peak * (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def train_stages(model, stages: list[StageData], hp, pad_id: int, rank: int = 0, world: int = 1,
                 on_stage_end=None) -> dict:
    """Train through every stage in order; returns per-stage loss, tokens and seconds.

    Each stage restarts the lr schedule (warmup then cosine), as separate fine-tuning stages would.
    Raises FloatingPointError when the loss stops being finite.
    """
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)
    rng = np.random.default_rng(hp.seed)
    summary: dict = {"stages": []}
    model.train()
    for stage in stages:
        t0 = time.perf_counter()
        lengths = np.array([len(ids) for ids, _ in stage.samples])
        plan = []
        for _ in range(stage.epochs):
            batches = length_grouped_batches(lengths, hp.batch_size * world, rng)
            plan.extend(b[rank::world] for b in batches if len(b[rank::world]))
        total_steps = len(plan)
        loss_sum, tokens, steps = 0.0, 0, 0
        for step, idx in enumerate(plan):
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total_steps, hp.lr, hp.warmup_ratio)
            ids, labels, mask = collate([stage.samples[i] for i in idx], pad_id)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at stage {stage.name!r} "
                                         f"step {step}")
            loss.backward()
            if hp.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, hp.max_grad_norm)
            opt.step()
            opt.zero_grad(set_to_none=True)
            loss_sum += loss.item()
            tokens += int(mask.sum())
            steps += 1
        record = {"name": stage.name, "samples": len(stage.samples), "steps": steps,
                  "tokens": tokens, "loss": loss_sum / max(steps, 1),
                  "seconds": time.perf_counter() - t0}
        summary["stages"].append(record)
        if on_stage_end is not None:
            on_stage_end(record)
    return summary


def select(domain: TokenizedDomain, indices) -> list[tuple[np.ndarray, np.ndarray]]:
    return [domain.sample(int(i)) for i in indices]
