"""The `online` strategy's stage: one SFT run whose domain weights move while it trains
(online_weights: ODM's EXP3, Albalak et al. 2023; DoReMi's Group-DRO, Xie et al. 2023).

Equal data with the static strategies, in both senses: the stage makes exactly amount × epochs
draws (the sample visits of a static trial of the same `amount` and `epochs`), in global
micro-batches of batch_size × workers, and sees at most `amount` distinct samples (_Draws), each
domain's a prefix of its nested seeded order (data.mixture.domain_order), as a static trial's
are. Each draw's domain comes from the current weights (a generator seeded by the trial's seed,
identical on every rank); the weights decide which domains the distinct samples go to and how
often each is visited again.
The learning-rate schedule spans the stage's optimizer steps, as a static stage's does.

Every `update_every` optimizer steps the per-domain sums of token losses (and of the reference
model's, for doremi) are all-reduced across ranks; rank 0 updates the weights and broadcasts
them, so every rank draws from the same weights (the same collectives at the same steps on
every rank: DDP and FSDP alike). Updates start after `warmup` × the stage's steps.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..data.mixture import domain_order
from ..data.tokenize import IGNORE
from .loop import collate, lr_at
from .online_weights import DomainWeights, draw_domains


@dataclass
class OnlineStageData:
    name: str
    pools: dict  # domain -> TokenizedDomain (its whole pool)
    orders: dict  # domain -> its nested seeded order
    prior: dict[str, int]  # the point's counts: the prior's shares
    draws: int  # amount × epochs
    epochs: int
    knobs: dict
    steps: int | None = None
    reference: object = field(default=None, repr=False)  # doremi's frozen reference model

    @property
    def domains(self) -> list[str]:
        return list(self.prior)


def online_stage_data(prepared, stage, epochs: int, seed: int) -> OnlineStageData:
    pools = {d: prepared.tokenized(d) for d in stage.counts}
    return OnlineStageData(stage.name, pools,
                           {d: domain_order(d, len(td), seed) for d, td in pools.items()},
                           dict(stage.counts), sum(stage.counts.values()) * (stage.epochs or
                                                                             epochs),
                           stage.epochs or epochs, dict(stage.online), stage.steps)


def reference_model(stages, core, device):
    """DoReMi's reference for the online stages that need one: a frozen copy of the model SFT
    starts from ('base'), or a local checkpoint directory. Taken before DDP/FSDP wrap `core`."""
    import copy

    import torch

    wanted = {s.knobs.get("reference", "base") for s in stages
              if isinstance(s, OnlineStageData) and s.knobs["method"] == "doremi"}
    for ref in wanted:
        if ref == "base":  # `core` may still be on the host: DDP/FSDP's prepare moves it later
            model = copy.deepcopy(core).to(device)
        else:
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(ref, dtype=torch.float32).to(device)
        model.eval().requires_grad_(False)
        for s in stages:
            if isinstance(s, OnlineStageData) and s.knobs.get("reference", "base") == ref:
                s.reference = model


def micro_sizes(draws: int, per_micro: int, world: int) -> list[int]:
    """Global micro-batch sizes that add up to `draws`; a last one smaller than the world is
    dropped, as a static stage drops it, so every rank takes the same number of steps."""
    sizes = [per_micro] * (draws // per_micro) + ([draws % per_micro] if draws % per_micro
                                                    else [])
    return [n for n in sizes if n >= world]


def sample_losses(logits, labels):
    """Summed next-token loss and label-token count per row, as the training loss counts them
    (position t predicts label t+1; IGNORE labels count for nothing)."""
    import torch.nn.functional as F

    shifted = labels[:, 1:]
    ce = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                         shifted.reshape(-1), ignore_index=IGNORE, reduction="none")
    return ce.view(shifted.shape).sum(1), (shifted != IGNORE).sum(1)


def _forward(model, reference, inputs, autocast_dtype, device, accum: int, sync: bool):
    """One micro-batch: the loss backpropagated, and per row the loss sums, token counts and
    the reference's loss sums (zeros without a reference)."""
    import torch

    from .parallel import set_gradient_sync

    set_gradient_sync(model, sync)
    no_sync = contextlib.nullcontext() if sync or not hasattr(model, "no_sync") \
        else model.no_sync()
    amp = (lambda: torch.autocast(device.type, dtype=autocast_dtype)) if autocast_dtype \
        else contextlib.nullcontext
    with no_sync:
        with amp():
            out = model(**inputs)
        if not torch.isfinite(out.loss):
            raise FloatingPointError(f"loss became {out.loss.item()} in an online stage")
        (out.loss / accum).backward()
    with torch.no_grad():
        sums, counts = sample_losses(out.logits.detach(), inputs["labels"])
        ref = torch.zeros_like(sums)
        if reference is not None:
            with amp():
                logits = reference(input_ids=inputs["input_ids"],
                                   attention_mask=inputs["attention_mask"]).logits
            ref = sample_losses(logits, inputs["labels"])[0]
    return out.loss, sums, counts, ref


class _Sync:
    """The per-domain statistics of an interval, all-reduced; weights decided on rank 0 and
    broadcast (one all-reduce and one broadcast per interval, on every rank)."""

    def __init__(self, k: int, world: int, device):
        import torch

        self.world, self.acc = world, torch.zeros(3, k, dtype=torch.float64, device=device)

    def add(self, dom, sums, counts, ref) -> None:
        idx = dom.to(self.acc.device)
        for row, values in enumerate((sums, counts, ref)):
            self.acc[row].index_add_(0, idx, values.detach().to(self.acc))

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(self.acc)
        # a copy: on a CPU device .cpu().numpy() shares the memory that zero_() clears
        sums, counts, ref = self.acc.cpu().numpy().copy()
        self.acc.zero_()
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / counts, np.nan), \
                np.where(counts > 0, ref / counts, np.nan)

    def broadcast(self, weights: np.ndarray) -> np.ndarray:
        if self.world == 1:
            return weights
        import torch
        import torch.distributed as dist

        t = torch.as_tensor(weights, dtype=torch.float64, device=self.acc.device)
        dist.broadcast(t, src=0)
        return t.cpu().numpy()


class _Draws:
    """Which sample each draw takes. Equal data: the stage sees at most `budget` (= amount)
    distinct samples, each domain's a prefix of its nested order, as a static trial of that
    amount does. Until the budget is spent a draw takes its domain's next new sample; after, it
    cycles through what its domain has already seen (its later epochs), and a domain that saw
    nothing can no longer be drawn (`weights` renormalizes over the others). A domain first
    drawn in the micro-batch where the budget runs out still gets one new sample: the budget
    can be overrun by at most one sample per domain. The counters move alike on every rank.
    plan.strategies.ONLINE_DRAWS names this rule in the manifest (the evaluation cache's key):
    a change here changes it there."""

    def __init__(self, stage: OnlineStageData):
        self.stage, k = stage, len(stage.prior)
        self.drawn, self.seen = np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.int64)
        self.budget = sum(stage.prior.values())

    def weights(self, w: np.ndarray) -> np.ndarray:
        if self.seen.sum() < self.budget:
            return w
        kept = np.where(self.seen > 0, w, 0.0)
        return kept / kept.sum()

    def take(self, picks: np.ndarray, rank: int, world: int) -> list:
        """This rank's (domain index, sample) of a global micro-batch of domains `picks`."""
        names, chosen = self.stage.domains, []
        for slot, k in enumerate(picks):
            order = self.stage.orders[names[k]]
            if self.seen.sum() < self.budget or self.seen[k] == 0:
                pos = self.seen[k]
                self.seen[k] += 1
            else:
                pos = self.drawn[k] % self.seen[k]
            if slot % world == rank:
                chosen.append((int(k), self.stage.pools[names[k]].sample(
                    int(order[pos % len(order)]))))
            self.drawn[k] += 1
        return chosen


class _History:
    """The weight trajectory: weights after each update (and at step 0), each interval's
    per-domain training (and reference) loss, and the step-weighted mean of the weights."""

    def __init__(self, names: list[str], weights: np.ndarray):
        self.names, self.points = names, [{"step": 0, "weights": weights.tolist()}]
        self.weighted, self.steps = np.zeros(len(names)), 0

    def count(self, weights: np.ndarray) -> None:
        self.weighted += weights
        self.steps += 1

    def add(self, step: int, weights, losses, ref, method: str) -> None:
        point = {"step": step, "weights": list(map(float, weights)),
                 "loss": [None if not np.isfinite(v) else float(v) for v in losses]}
        if method == "doremi":
            point["reference_loss"] = [None if not np.isfinite(v) else float(v) for v in ref]
        self.points.append(point)

    def summary(self, weights: np.ndarray, draws: _Draws) -> dict:
        mean = self.weighted / max(self.steps, 1)
        return {"domains": self.names, "history": self.points,
                "final": dict(zip(self.names, map(float, weights))),
                "mean": dict(zip(self.names, map(float, mean))),
                "drawn": dict(zip(self.names, map(int, draws.drawn))),
                "distinct": dict(zip(self.names, map(int, draws.seen)))}


def _optimizer_step(opt, params, hp, lr: float) -> None:
    import torch

    for g in opt.param_groups:
        g["lr"] = lr
    if hp.max_grad_norm:
        torch.nn.utils.clip_grad_norm_(params, hp.max_grad_norm)
    opt.step()
    opt.zero_grad(set_to_none=True)


def train_online_stage(model, stage: OnlineStageData, hp, pad_id: int, *, index: int,
                       rank: int = 0, world: int = 1, device=None, autocast_dtype=None,
                       on_epoch_end=None, speed=None) -> dict:
    """The online stage, as train_stage runs a static one (fresh AdamW, warmup then cosine,
    every generator seeded from (seed, stage index)); the record adds `online`: the weight
    trajectory, final and mean weights and the draws per domain. `on_epoch_end(e)` after
    each amount's worth of draws but the last."""
    import torch

    from .rng import seed_stage
    from .speed import make_optimizer, resolve_speed

    device = device or torch.device("cpu")
    speed = speed or resolve_speed(hp, device)
    seed_stage(hp.seed, index, rank)
    params = [p for p in model.parameters() if p.requires_grad]
    opt, knobs, t0 = make_optimizer(params, hp, speed), stage.knobs, time.perf_counter()
    sizes = micro_sizes(stage.draws, hp.batch_size * world, world)
    if stage.steps is not None:
        sizes = sizes[:stage.steps * hp.grad_accum]
    total_steps = max(1, math.ceil(len(sizes) / hp.grad_accum))
    warm, every = math.ceil(total_steps * float(knobs["warmup"])), int(knobs["update_every"])
    per_epoch = max(1, math.ceil(total_steps / stage.epochs))
    weights = DomainWeights(knobs["method"], np.array(list(stage.prior.values()), float),
                            float(knobs["step_size"]), float(knobs["smoothing"]))
    w = weights.weights
    rng, draws = np.random.default_rng([hp.seed, index, 1]), _Draws(stage)
    sync, history = _Sync(len(w), world, device), _History(stage.domains, w)
    model.train()
    step = tokens = 0
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    for i, n in enumerate(sizes):
        chosen = draws.take(draw_domains(draws.weights(w), n, rng), rank, world)
        ids, labels, mask = collate([s for _, s in chosen], pad_id)
        inputs = {"input_ids": ids.to(device), "attention_mask": mask.to(device),
                  "labels": labels.to(device)}
        last = (i + 1) % hp.grad_accum == 0 or i + 1 == len(sizes)
        loss, sums, counts, ref = _forward(model, stage.reference, inputs, autocast_dtype,
                                           device, hp.grad_accum, last)
        sync.add(torch.tensor([k for k, _ in chosen]), sums, counts, ref)
        loss_sum += loss.detach().double()
        tokens += int(mask.sum())
        if not last:
            continue
        _optimizer_step(opt, params, hp, lr_at(step, total_steps, hp.lr, hp.warmup_ratio))
        step += 1
        history.count(w)
        if step % every == 0 and step < total_steps:
            losses, ref_losses = sync.take()
            if step >= warm:
                w = sync.broadcast(weights.update(losses, ref_losses) if rank == 0 else w)
                weights.weights = w
            history.add(step, w, losses, ref_losses, knobs["method"])
        if on_epoch_end is not None and step % per_epoch == 0 and step < total_steps:
            on_epoch_end(step // per_epoch)
            model.train()
    return {"name": stage.name, "samples": int(stage.draws), "steps": step, "tokens": tokens,
            "positions": tokens, "loss": float(loss_sum) / max(len(sizes), 1),
            "seconds": time.perf_counter() - t0, "online": history.summary(w, draws)}


def trainer_for(stage, static_trainer):
    """What trains `stage`: the online loop for an online stage, else the static one."""
    return train_online_stage if isinstance(stage, OnlineStageData) else static_trainer


def online_speed(stages, speed):
    """An online stage needs the logits (per-domain losses): no chunked loss, and it collates
    its own batches (no packing); other trials keep the speed options as resolved."""
    import dataclasses

    if not any(isinstance(s, OnlineStageData) for s in stages):
        return speed
    return dataclasses.replace(speed, chunked_loss=False, packing=False)


def online_metrics(records: list[dict]) -> dict:
    """What the trial reports of its online stage: the trajectory (JSON, for MLflow's metric
    history) and the draws per domain."""
    import json

    out = {}
    for r in records:
        if r.get("online"):
            out["online_trajectory"] = json.dumps(r["online"])
            out.update({f"{kind}_{d}": n for kind in ("drawn", "distinct")
                        for d, n in r["online"][kind].items()})
    return out
