"""How a trial's workers share its model: DDP replicas (Ray Train's `prepare_model`), or FSDP
shards through torch's own `fully_shard` (FSDP2), each decoder layer its own unit so one layer's
full weights exist at a time. FSDP2 keeps parameters as DTensors with their usual names.

Every collective here is entered by every rank the same number of times, in the same order: a
rank-0-only gather hangs until the collective timeout (world size 1 hides it). So gathers for
checkpoints happen on every rank (gather.py), and evaluation unshards the whole model once on
every rank (`inference_weights`) and then generates with no collective at all, so ranks may run
different numbers of `generate` calls and decode steps.
"""

from __future__ import annotations

from contextlib import contextmanager


def prepare(module, core, parallel: str, device, mp_dtype=None):
    """`module` (what the loop calls) ready to train on `device`; `core` is the language model
    inside it, whose decoder layers FSDP shards one by one. `mp_dtype`: FSDP's compute and
    all-gather dtype (bf16 when training in bf16); DDP leaves precision to autocast."""
    import torch

    if parallel != "fsdp":
        import ray.train.torch

        # weights may arrive in their checkpoint's 16-bit dtype (model.build_model keeps one
        # 16-bit copy on the host); float32 master weights live on the device only
        return ray.train.torch.prepare_model(module.to(device=device, dtype=torch.float32),
                                             parallel_strategy="ddp")
    return shard(module, core, device, mp_dtype)


def shard(module, core, device, mp_dtype=None):
    """FSDP2 over the default process group: each decoder layer, then the whole module (the
    embeddings, final norm and head: tied weights stay in one unit). A layer is moved to the
    device and made float32 just before it is sharded, so the device holds one layer's full
    float32 weights at a time beside the shards. With `mp_dtype` (bf16), FSDP's own
    MixedPrecisionPolicy all-gathers and computes in it and reduces gradients in float32; the
    shards stay float32 master weights."""
    import torch
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    from .speed import base_lm

    policy = MixedPrecisionPolicy(param_dtype=mp_dtype, reduce_dtype=torch.float32) \
        if mp_dtype is not None else MixedPrecisionPolicy()
    for layer in base_lm(core).get_decoder().layers:
        layer.to(device=device, dtype=torch.float32)
        fully_shard(layer, mp_policy=policy)
    module.to(device=device, dtype=torch.float32)
    fully_shard(module, mp_policy=policy)
    return module


def fsdp_units(model) -> list:
    """The FSDP units in `model`, root first (module order: the same on every rank)."""
    from torch.distributed.fsdp import FSDPModule

    return [m for m in model.modules() if isinstance(m, FSDPModule)]


def is_sharded(model) -> bool:
    return bool(fsdp_units(model))


def full(tensor):
    """A plain tensor for a (possibly sharded) parameter or buffer. A collective for a DTensor:
    every rank must call it, in the same order."""
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor


def local(tensor):
    """This rank's part of a (possibly sharded) tensor, without communication."""
    return tensor.to_local() if hasattr(tensor, "to_local") else tensor


def set_gradient_sync(model, sync: bool) -> None:
    """FSDP2 has no `no_sync`: gradient reduce-scatters are switched off for the micro-batches
    before a step's last one, so gradients reduce once per optimizer step."""
    if hasattr(model, "set_requires_gradient_sync"):
        model.set_requires_gradient_sync(sync)


@contextmanager
def inference_weights(model):
    """The full weights of every FSDP unit in `model`, unsharded on every rank for the duration
    (one all-gather per unit, all ranks alike), then sharded again; the training's shards,
    optimizer references and autograd are untouched. Inside, forwards issue no collective, so
    each rank may generate its own share of prompts in its own number of steps. The unsharded
    weights are in the units' MixedPrecisionPolicy dtype (evaluate/precision.py reads it).
    Not sharded: `model` as it is."""
    units = fsdp_units(model)
    if not units:
        yield model
        return
    root = units[0]
    # The root must know it is the root before a forward that does not start at it (generation
    # calls the language model inside the chunked-loss wrapper). Private, idempotent (torch 2.13).
    root._get_fsdp_state()._lazy_init()
    for unit in units:
        unit.set_reshard_after_forward(False, recurse=False)
        unit.unshard()
    try:
        yield model
    finally:
        for unit in units:
            unit.reshard()
            # FSDP's own defaults: layers reshard after forward, the root keeps its weights
            # (they are needed again first in the backward pass)
            unit.set_reshard_after_forward(unit is not root, recurse=False)
