"""How a trial's workers share its model: DDP replicas (Ray Train's `prepare_model`), or FSDP
shards through torch's own `fully_shard` (FSDP2), each decoder layer its own unit so one layer's
full weights exist at a time. FSDP2 keeps parameters as DTensors with their usual names; `full`
turns one back into a plain tensor for checkpoints and the parameter delta."""

from __future__ import annotations


def prepare(module, core, parallel: str, device):
    """`module` (what the loop calls) ready to train on `device`; `core` is the language model
    inside it, whose decoder layers FSDP shards one by one."""
    if parallel != "fsdp":
        import ray.train.torch

        return ray.train.torch.prepare_model(module, parallel_strategy="ddp")
    return shard(module, core, device)


def shard(module, core, device):
    """FSDP2 over the default process group: each decoder layer, then the whole module (the
    embeddings, final norm and head). Mixed precision stays autocast's (loop.amp_dtype), so the
    shards hold float32 master weights as DDP's replicas do."""
    from torch.distributed.fsdp import fully_shard

    base = core.get_base_model() if hasattr(core, "get_base_model") else core
    module.to(device)
    for layer in base.get_decoder().layers:
        fully_shard(layer)
    fully_shard(module)
    return module


def full(tensor):
    """A plain tensor for a (possibly sharded) parameter or buffer."""
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor
