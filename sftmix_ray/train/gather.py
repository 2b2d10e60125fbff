"""Whole weights out of a trial's workers and back in: the stage-prefix cache's trainable state and
the kept model. Gathers run on every rank (each sharded tensor's `full_tensor` is a collective)
and only rank 0 keeps the result, on the host, one tensor at a time; loading reads the file on
rank 0 alone and broadcasts it, so host memory holds one copy per node, not one per worker."""

from __future__ import annotations

from .parallel import full, is_sharded


def gather_state(named_tensors, rank: int, dtype=None) -> dict:
    """{name: host tensor} on rank 0 ({} elsewhere) for (name, tensor) pairs that every rank
    iterates in the same order; `dtype` casts each tensor as it arrives (the kept model)."""
    out = {}
    for name, tensor in named_tensors:
        whole = full(tensor.detach())
        if rank == 0:  # a copy: the live tensor goes on training
            out[name] = whole.to("cpu", dtype=dtype or whole.dtype, copy=True)
    return out


def gather_model(core, rank: int, dtype: str = "bfloat16") -> dict:
    """The whole model's state (peft names under LoRA) on rank 0, cast to `dtype` ('bfloat16'
    or 'float32') as each tensor arrives; {} on the other ranks, which must call it too. A tied
    weight is gathered once (transformers ties it again on load)."""
    import torch

    # the same Parameter under a second name (tied embeddings) is skipped: module structure,
    # not storage, decides, so every rank skips alike (an empty shard has no storage)
    params = dict(core.named_parameters(remove_duplicate=False))
    seen, named = set(), []
    for name, tensor in core.state_dict().items():
        ident = id(params[name]) if name in params else name
        if ident in seen:
            continue
        seen.add(ident)
        named.append((name, tensor))
    return gather_state(named, rank, getattr(torch, dtype))


def trainable_named(model):
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def load_state(model, state: dict, rank: int, world: int) -> None:
    """Copy `state` (rank 0's; {} elsewhere) into `model`'s parameters of those names, sharded
    or not: torch's distributed state-dict API broadcasts from rank 0 and keeps each rank's
    shard. At world size 1 it is a plain copy."""
    import torch

    if world == 1 and not is_sharded(model):
        params = dict(model.named_parameters())
        missing = [n for n in state if n not in params]
        if missing:
            raise KeyError(f"checkpoint holds parameters the model lacks: {missing[:3]}")
        with torch.no_grad():
            for n, value in state.items():
                params[n].copy_(value.to(params[n].device, params[n].dtype))
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    names = _broadcast_names(sorted(state) if rank == 0 else None)
    params = dict(model.named_parameters())
    missing = [n for n in names if n not in params]
    if missing:
        raise KeyError(f"checkpoint holds parameters the model lacks: {missing[:3]}")
    # a copy of the mapping: the API puts the sharded tensors back into the dict it is given
    set_model_state_dict(model, dict(state) if rank == 0 else {},
                         options=StateDictOptions(full_state_dict=True,
                                                  broadcast_from_rank0=True, strict=False))


def _broadcast_names(names):
    import torch.distributed as dist

    box = [names]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def merged_lora_state(core, state: dict) -> dict:
    """A peft LoRA model's gathered state (`state`, peft names) as the plain model's state with
    each adapter merged into its base weight: W + scaling · B·A, which is what peft's
    `merge_and_unload` computes for a Linear without fan_in_fan_out or DoRA (neither is a
    sweep option). Done on the gathered host tensors because the live model is sharded and
    still training; the sum is taken in float32, then cast back."""
    from peft.tuners.lora import LoraLayer

    out = dict(state)
    for name, module in core.named_modules():
        if not isinstance(module, LoraLayer):
            continue
        for adapter in module.active_adapters:
            a = out.pop(f"{name}.lora_A.{adapter}.weight")
            b = out.pop(f"{name}.lora_B.{adapter}.weight")
            key = f"{name}.base_layer.weight"
            w = out[key]
            out[key] = (w.float() + module.scaling[adapter] * (b.float() @ a.float())).to(w.dtype)
    prefix = "base_model.model."
    return {k.removeprefix(prefix).replace(".base_layer.", "."): v for k, v in out.items()
            if ".lora_" not in k}
