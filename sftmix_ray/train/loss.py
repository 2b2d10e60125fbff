"""A causal-LM loss that never holds float32 logits over the whole vocabulary at once.

transformers' loss upcasts the full logits tensor to float32: for batch 16 × 1024 tokens and a
32 000-token vocabulary that is 2 GiB, plus the bf16 logits and their gradient, a tenth of the
1.09 B model's peak. Here the last hidden states go through the LM head and cross-entropy one
chunk of tokens at a time, each chunk under activation checkpointing, so only one chunk's logits
exist in the forward pass and again in the backward pass. Hand-written (about 20 lines) because
the fused kernels that do this (Liger's fused linear cross-entropy, Apple's cut-cross-entropy)
are Triton-only and optional on a node; this runs anywhere, CPU tests included, and gives
transformers' loss to rounding (tests/train/test_speed.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint
from transformers.modeling_outputs import CausalLMOutput

from ..data.tokenize import IGNORE

CHUNK_TOKENS = 4096  # 4096 × 32 000 float32 logits = 0.5 GiB live at a time


def chunked_causal_lm_loss(hidden: torch.Tensor, head: torch.nn.Module, labels: torch.Tensor,
                           chunk: int = CHUNK_TOKENS) -> torch.Tensor:
    """Mean next-token cross-entropy over labelled positions, as transformers' ForCausalLMLoss:
    position t predicts label t+1; IGNORE labels count for nothing."""
    shifted = F.pad(labels, (0, 1), value=IGNORE)[:, 1:].reshape(-1)
    flat = hidden.reshape(-1, hidden.shape[-1])
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, flat.shape[0], chunk):
        total = total + checkpoint(_chunk_loss, head, flat[start:start + chunk],
                                   shifted[start:start + chunk], use_reentrant=False)
    return total / (shifted != IGNORE).sum().clamp(min=1)


def _chunk_loss(head, hidden, labels):
    return F.cross_entropy(head(hidden).float(), labels, ignore_index=IGNORE, reduction="sum")


class ChunkedLossLM(torch.nn.Module):
    """`lm` (a transformers causal LM, or a peft model around one) with the chunked loss. The
    decoder and head are called through this module's forward, so DDP's hooks see the whole
    step; `lm`'s parameters are this module's, under the prefix `lm.`."""

    def __init__(self, lm: torch.nn.Module, chunk: int = CHUNK_TOKENS):
        super().__init__()
        self.lm, self.chunk = lm, chunk
        base = lm.get_base_model() if hasattr(lm, "get_base_model") else lm
        self._decoder, self._head = [base.get_decoder()], [base.get_output_embeddings()]

    def forward(self, input_ids, labels, **kwargs):
        kwargs["use_cache"] = False
        hidden = self._decoder[0](input_ids=input_ids, **kwargs).last_hidden_state
        return CausalLMOutput(loss=chunked_causal_lm_loss(hidden, self._head[0], labels,
                                                          self.chunk))
