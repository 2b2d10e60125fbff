"""Per-domain held-out loss (`loss_<domain>`): each lab domain's mean token loss on held-out
samples (the lab's evaluation problems with their reference answers, which training never draws:
data/lab.py keeps evaluation keys out of every training pool), measured after every trained
epoch (metric history) and at the end.

Under DDP or FSDP every rank computes the loss of its own share of the samples (every world-th),
inside `inference_weights` where forwards issue no collective, and one all_gather_object brings
the per-sample sums to every rank: each rank enters exactly that one collective per
measurement."""

from __future__ import annotations

import numpy as np

from ..evaluate.intervals import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, CONFIDENCE

BATCH = 16


def heldout_samples(job, tokenizer, template) -> dict[str, list]:
    """{domain: [(ids, labels), ...]} for every lab domain, tokenized as training tokenizes."""
    from ..data.formats import to_messages
    from ..data.lab import code_alpaca_row, lab_eval
    from ..data.tokenize import tokenize_conversations

    cfg = job.evaluate.heldout_loss
    out = {}
    for domain, info in job.prepared.domains.items():
        if not cfg.enabled or info.get("source") != "lab":
            continue
        rows = lab_eval(domain, cfg.n)
        rows = [code_alpaca_row(r) for r in rows] if domain == "code" else rows
        convs = [to_messages(r, info["format"]) for r in rows]
        td, _ = tokenize_conversations(convs, tokenizer, template, job.train.max_length)
        out[domain] = [td.sample(i) for i in range(len(td))]
    return out


def _sums(core, samples: list, pad_id: int, device, autocast_dtype) -> list[tuple[float, int]]:
    """(summed token loss, label tokens) per sample, as the training loss counts tokens."""
    import torch
    import torch.nn.functional as F

    from .loop import IGNORE, collate

    out = []
    for i in range(0, len(samples), BATCH):
        ids, labels, mask = (t.to(device) for t in collate(samples[i:i + BATCH], pad_id))
        with torch.autocast(device.type, dtype=autocast_dtype,
                            enabled=autocast_dtype is not None):
            logits = core(input_ids=ids, attention_mask=mask).logits
        target = labels[:, 1:]
        loss = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), target,
                               ignore_index=IGNORE, reduction="none")
        out += [(float(s), int(n)) for s, n in zip(loss.sum(1).tolist(),
                                                    (target != IGNORE).sum(1).tolist())]
    return out


def heldout_pairs(core, held: dict, pad_id: int, *, rank: int, world: int, device,
                  autocast_dtype=None) -> dict[str, list[tuple[float, int]]]:
    """Per domain, every sample's (loss sum, tokens) in order, on every rank."""
    import torch

    was_training = core.training
    core.eval()
    with torch.no_grad():
        mine = {d: list(zip(range(rank, len(s), world),
                            _sums(core, s[rank::world], pad_id, device, autocast_dtype)))
                for d, s in held.items()}
    core.train(was_training)
    if world > 1:
        import torch.distributed as dist

        parts: list = [None] * world
        dist.all_gather_object(parts, mine)
        mine = {d: [x for p in parts for x in p[d]] for d in held}
    return {d: [pair for _, pair in sorted(v)] for d, v in mine.items()}


def heldout_metrics(pairs: dict) -> dict[str, float]:
    """`loss_<domain>` (token-weighted mean), its 95% interval (percentile bootstrap over
    samples) and `loss_<domain>_n`."""
    out = {}
    for domain, rows in pairs.items():
        loss, tokens = np.array([r[0] for r in rows]), np.array([r[1] for r in rows], float)
        if tokens.sum() == 0:
            continue
        rng = np.random.default_rng(BOOTSTRAP_SEED)
        picks = rng.integers(0, len(rows), size=(BOOTSTRAP_RESAMPLES, len(rows)))
        ratios = loss[picks].sum(1) / np.maximum(tokens[picks].sum(1), 1)
        tail = (1 - CONFIDENCE) / 2 * 100
        out.update({f"loss_{domain}": float(loss.sum() / tokens.sum()),
                    f"loss_{domain}_ci_low": float(np.percentile(ratios, tail)),
                    f"loss_{domain}_ci_high": float(np.percentile(ratios, 100 - tail)),
                    f"loss_{domain}_n": len(rows)})
    return out
