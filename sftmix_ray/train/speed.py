"""How a trial's SFT runs fast on a GPU, as resolved options: packed rows, the attention kernel,
fused AdamW, a chunked loss, compiled decoder layers and the CUDA allocator.

Each `train:` option left at its default (None / "auto") resolves to on for a CUDA device and
off on CPU, so CPU training is exactly what it was before these options existed (the CPU
quickstart's scores do not move). Measured on an H100 for a 1.09 B Llama (the issue-17 tables;
`benchmarks/gpu_throughput.py` measures them again): rows filled to max_length, compiled, with
the allocator set, are what lift MFU from ~10-15% to ~40%; no custom kernel is needed.

Precision: weights stay float32 under bf16 autocast (loop.amp_dtype), so AdamW keeps float32
master weights and state. Pure bf16 weights were 7% faster compiled in the issue's table, but
torch's AdamW then keeps its state and applies updates in bf16, where an update of lr 2e-5 to a
weight near 1 is below bf16's resolution (2^-8 relative) and is lost; a master-weight copy would
be hand-written optimizer code. Autocast + compile reached 43% MFU there: above the 40% goal.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass

ALLOC_ENV = "PYTORCH_CUDA_ALLOC_CONF"


@dataclass(frozen=True)
class Speed:
    packing: bool
    compile: bool
    fused: bool
    chunked_loss: bool
    attention: str | None  # None: leave the model's own (sdpa for Llama)
    cuda: bool

    def summary(self) -> dict:
        return {"packing": self.packing, "compile": self.compile, "fused_adamw": self.fused,
                "chunked_loss": self.chunked_loss, "attention": self.attention or "model"}


def resolve_speed(hp, device) -> Speed:
    """The options for `hp` (a TrainConfig or its dump) on `device`."""
    cuda = getattr(device, "type", str(device)) == "cuda"

    def pick(name: str) -> bool:
        value = getattr(hp, name, None)
        return cuda if value is None else bool(value)

    attention = getattr(hp, "attention", "auto")
    if attention == "auto":
        attention = ("flash_attention_2" if _flash_attn_installed() else "sdpa") if cuda else None
    return Speed(packing=pick("packing"), compile=pick("compile"), fused=pick("fused_optimizer"),
                 chunked_loss=pick("chunked_loss"), attention=attention, cuda=cuda)


def _flash_attn_installed() -> bool:
    try:
        from transformers.utils import is_flash_attn_2_available
    except ImportError:  # pragma: no cover - transformers always has it in the pinned range
        return False
    return is_flash_attn_2_available()


def set_allocator(expandable: bool) -> None:
    """Expandable segments for the CUDA caching allocator: batches of varying shapes otherwise
    fragment it (measured: 78 of 79 GiB reserved for 58 GiB used, and ~3 s stalls when it
    frees and retries). The variable is read when CUDA first allocates, so it is set before
    that; if CUDA is already up, the setting is applied to the live allocator instead. A value
    the user set is respected."""
    if not expandable or ALLOC_ENV in os.environ:
        return
    os.environ[ALLOC_ENV] = "expandable_segments:True"
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        try:
            torch.cuda.memory._set_allocator_settings("expandable_segments:True")
        except (AttributeError, RuntimeError):  # private API: the env var still covers new ones
            pass


def make_optimizer(params, hp, speed: Speed):
    """AdamW; its fused kernel (one launch for every parameter) where `speed.fused`."""
    import torch

    extra = {"fused": True} if speed.fused else {}
    return torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay, **extra)


def base_lm(model):
    """The transformers model under a peft wrapper (LoRA layers stay injected in it)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def train_module(model, speed: Speed):
    """What the loop calls for a loss: `model` itself, with the chosen attention kernel and
    compiled decoder layers, wrapped in a chunked loss when asked. The weights stay `model`'s
    (same parameter objects, same names), so checkpoints and the prefix cache see no wrapper."""
    lm = base_lm(model)
    if speed.attention is not None and lm.config._attn_implementation != speed.attention:
        lm.set_attn_implementation(speed.attention)
    if speed.compile:
        # Layer by layer and in place (nn.Module.compile): state-dict names keep no `_orig_mod`
        # prefix, the packed-sequence mask is still built eagerly from position ids, and one
        # graph serves every layer (torchtitan compiles the same way).
        for layer in lm.get_decoder().layers:
            layer.compile()
    if speed.chunked_loss:
        from .loss import ChunkedLossLM

        return ChunkedLossLM(model)
    return model


@contextmanager
def eager(model):
    """Compiled layers run eagerly for the duration (generation): their graphs were traced for
    training's fixed packed shape, and decoding's growing KV cache would make them recompile
    at every length. nn.Module.compile keeps the compiled call in `_compiled_call_impl`."""
    stashed = [(m, m._compiled_call_impl) for m in model.modules()
               if getattr(m, "_compiled_call_impl", None) is not None]
    for m, _ in stashed:
        m._compiled_call_impl = None
    try:
        yield model
    finally:
        for m, impl in stashed:
            m._compiled_call_impl = impl
