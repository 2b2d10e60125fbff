"""Batched generation: prompts left-padded, longest first so batches waste little padding; greedy by
default, sampled (n per prompt) for pass@k; sharded across the trial's Train workers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int = 64
    samples: int = 1  # completions per prompt
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int = 0


def generate(model, tokenizer, prompts: list[str], sampling: Sampling, batch_size: int = 64,
             prepend_bos: bool = True) -> list[list[str]]:
    """`sampling.samples` completions per prompt, in prompt order."""
    import torch

    if not prompts:
        return []
    # As in training (data/tokenize.py): a template that writes its own BOS gets no second one.
    bos = [tokenizer.bos_token_id] if prepend_bos and tokenizer.bos_token_id is not None else []
    encoded = [bos + e for e in tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    outputs: list[list[str]] = [[] for _ in prompts]
    pad = tokenizer.pad_token_id
    greedy = sampling.temperature <= 0
    if greedy and sampling.samples > 1:
        raise ValueError("more than one sample per prompt needs temperature > 0")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    if not greedy:
        torch.manual_seed(sampling.seed)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            width = max(len(encoded[i]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                seq = encoded[i]
                ids[row, width - len(seq):] = torch.tensor(seq)
                mask[row, width - len(seq):] = 1
            kwargs = {"do_sample": False} if greedy else {
                "do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p,
                "num_return_sequences": sampling.samples}
            out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                 max_new_tokens=sampling.max_new_tokens, pad_token_id=pad,
                                 eos_token_id=tokenizer.eos_token_id,
                                 # no cross-rank step sync: a sharded model is unsharded before
                                 # generation (train/parallel.inference_weights), so ranks may
                                 # stop at different steps and run different numbers of batches
                                 synced_gpus=False, **kwargs)
            texts = tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
            for j, text in enumerate(texts):
                outputs[idx[j // sampling.samples]].append(_clean(text, sampling.stop))
    model.train(was_training)
    return outputs


def _clean(text: str, stop: tuple[str, ...]) -> str:
    for s in stop:
        text = text.split(s, 1)[0]
    # The Vicuna template puts one space after "ASSISTANT:"; code indentation must survive.
    return text.removeprefix(" ").rstrip()


def generate_sharded(model, tokenizer, prompts: list[str], sampling: Sampling, *, batch_size: int,
                     prepend_bos: bool, rank: int = 0, world: int = 1) -> list[list[str]]:
    """Each Train worker generates every world-th prompt; the shards are gathered on every rank,
    so generation uses all of a trial's devices and the result is the same on each."""
    shard = list(range(rank, len(prompts), world))
    mine = generate(model, tokenizer, [prompts[i] for i in shard], sampling, batch_size,
                    prepend_bos)
    if world == 1:
        return mine
    import torch.distributed as dist

    gathered: list = [None] * world
    dist.all_gather_object(gathered, list(zip(shard, mine)))
    outputs: list[list[str]] = [[] for _ in prompts]
    for part in gathered:
        for i, texts in part:
            outputs[i] = texts
    return outputs
