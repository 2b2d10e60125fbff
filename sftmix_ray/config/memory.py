"""Will a trial fit its GPUs? A per-GPU estimate of peak allocated memory, before anything runs.

Counted (bytes, per GPU), for a Llama-shaped decoder trained as train/ trains it:
- weights: float32 (train/model.py keeps float32 master weights under bf16 autocast);
- gradients and AdamW's two moments: float32, for the trainable parameters (all, or LoRA's);
- DDP (more than one worker): one more gradient-sized set of bucket buffers;
- FSDP: weights, gradients and optimizer state divided by the workers, plus two decoder layers
  and the root unit (embeddings, head) unsharded in the all-gather dtype (bf16 under autocast);
  with grad_accum > 1 an unsharded float32 gradient, accumulated between once-per-step reductions;
- activations saved for the backward pass, per token of a micro-batch (batch_size × max_length
  tokens: packed rows are full, and padded batches can be that wide) and per layer: the float32
  residual stream at both RMSNorms' input and output (4 × 4h), what autocast casts to bf16 for
  the projections (3h for q/k/v, 2h for gate/up: each projection casts its own copy), q, k, v,
  the attention output and o_proj's input (h + 2·kv + 2h), and the MLP's gate, up, activation
  and product (4i); under gradient checkpointing only each layer's input (4h) plus one layer's
  full set; LoRA dropout keeps each adapted projection's input again;
- the loss: transformers' holds the logits (bf16), their float32 copy, log-softmax and its
  gradient (2 + 4 + 4 + 4 bytes per token × vocabulary); the chunked loss only one chunk's.
Checked against the issue-17 measurements of a 1.09 B Llama on an H100 (tests/config/
test_memory.py): 57.7 GiB (length-grouped, batch 16, max 1023 tokens) and 61.5 GiB (rows of 1024).
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 2 ** 30
CHUNK_TOKENS = 4096  # train/loss.py's chunk
CONTEXT_GIB = 1.0  # CUDA context, cuBLAS workspaces, allocator slack: never allocatable


@dataclass(frozen=True)
class ModelShape:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tied: bool = True

    @property
    def params(self) -> int:
        h, kv = self.hidden, self.hidden * self.kv_heads // self.heads
        layer = 2 * h * h + 2 * h * kv + 3 * h * self.intermediate + 2 * h
        return self.layers * layer + self.vocab * h * (1 if self.tied else 2) + h

    def module_dims(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each projection of a decoder layer, by module name."""
        h, i = self.hidden, self.intermediate
        kv = h * self.kv_heads // self.heads
        return {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}


@dataclass(frozen=True)
class MemoryEstimate:
    weights: float  # GiB per GPU, each
    gradients: float
    optimizer: float
    activations: float
    loss: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations + self.loss

    def describe(self) -> str:
        return (f"~{self.total:.1f} GiB per GPU (weights {self.weights:.1f}, gradients "
                f"{self.gradients:.1f}, optimizer {self.optimizer:.1f}, activations "
                f"{self.activations:.1f}, loss {self.loss:.1f})")


def _lora_params(shape: ModelShape, lora) -> int:
    dims = shape.module_dims()
    return shape.layers * sum(lora.r * (dims[m][0] + dims[m][1])
                              for m in lora.target_modules if m in dims)


def _activation_bytes_per_token(shape: ModelShape, train, autocast: bool) -> float:
    h, i, c = shape.hidden, shape.intermediate, 2 if autocast else 4
    kv = h * shape.kv_heads // shape.heads
    attn = 4 * 4 * h // 2 + c * h * (3 if autocast else 1) + c * (h + 2 * kv) + 2 * c * h
    mlp = 4 * 4 * h // 2 + c * h * (2 if autocast else 1) + 4 * c * i
    layer = attn + mlp
    if train.lora is not None and train.lora.dropout > 0:
        dims = shape.module_dims()
        layer += sum(c * dims[m][0] for m in train.lora.target_modules if m in dims)
    if train.gradient_checkpointing:
        return shape.layers * 4 * h + layer
    return shape.layers * layer


def estimate(shape: ModelShape, train, *, autocast: bool = True,
             chunked_loss: bool | None = None) -> MemoryEstimate:
    """Peak allocated memory per GPU for `train` (a TrainConfig) on a GPU. `chunked_loss`
    None: the train config's, whose default is on for GPUs."""
    params = shape.params
    trainable = _lora_params(shape, train.lora) if train.lora is not None else params
    workers = train.workers
    weights, grads, optim = 4 * params, 4 * trainable, 8 * trainable
    if train.parallel == "fsdp" and workers > 1:
        embed = shape.vocab * shape.hidden * (1 if shape.tied else 2)
        layer = (params - embed) / shape.layers
        gathered = 2 if autocast else 4  # the MixedPrecisionPolicy's all-gather dtype
        # two layers unsharded (computing, prefetched) and the root unit (embeddings, head),
        # which FSDP keeps unsharded from forward to backward
        weights = weights / workers + gathered * (2 * layer + embed)
        grads, optim = grads / workers, optim / workers
        if train.grad_accum > 1:  # gradients reduce once per step: between reductions each
            grads += 4 * trainable  # GPU accumulates an unsharded float32 gradient (FSDP2)
    elif workers > 1:
        grads *= 2  # DDP's bucket buffers
    tokens = train.batch_size * train.max_length
    acts = tokens * _activation_bytes_per_token(shape, train, autocast)
    chunked = train.chunked_loss if chunked_loss is None else chunked_loss
    chunked = True if chunked is None else chunked
    loss_tokens = min(tokens, CHUNK_TOKENS) if chunked else tokens
    loss = loss_tokens * shape.vocab * ((2 if autocast else 4) + 12)
    return MemoryEstimate(weights / GIB, grads / GIB, optim / GIB, acts / GIB, loss / GIB)


# The study's models (LLaMA 7B/13B/33B), so their sweeps are checked on a machine that has not
# downloaded them; any other hub model is read from its local config.json.
KNOWN_SHAPES = {"huggyllama/llama-7b": ModelShape(4096, 32, 32, 32, 11008, 32000, tied=False),
                "huggyllama/llama-13b": ModelShape(5120, 40, 40, 40, 13824, 32000, tied=False),
                "huggyllama/llama-30b": ModelShape(6656, 60, 52, 52, 17920, 32000, tied=False)}


def model_shape(model_cfg) -> ModelShape | None:
    """The shape of the sweep's model: from `tiny`, or from a config.json found locally (a
    path, or a hub id already in the local cache), or the study's LLaMA shapes. None when none
    is at hand: nothing is downloaded to validate a sweep."""
    if model_cfg.tiny is not None:
        t = model_cfg.tiny
        return ModelShape(t.hidden_size, t.layers, t.heads, t.heads, t.intermediate_size,
                          model_cfg.lab_vocab_size, tied=True)
    try:
        from transformers import AutoConfig

        cfg = AutoConfig.from_pretrained(model_cfg.name, local_files_only=True)
        return ModelShape(cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads,
                          getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads,
                          cfg.intermediate_size, cfg.vocab_size,
                          tied=bool(getattr(cfg, "tie_word_embeddings", False)))
    except (OSError, ValueError, AttributeError, ImportError):
        return KNOWN_SHAPES.get(model_cfg.name)


WORKER_HOST_GIB = 3.0  # a worker process: Python, torch, transformers, CUDA's host side


def host_estimate(shape: ModelShape, train) -> tuple[float, str]:
    """Peak host memory (GiB) on the node of one trial, its workers on that node: each worker
    loads one bfloat16 copy of the weights on CPU before moving it to its GPU (the loading the
    FSDP path uses: at most one bf16 copy per worker at peak), and saving gathers one full bf16
    state dict on CPU on rank 0 (twice that for float32 stage checkpoints)."""
    params = shape.params
    workers = train.workers
    load = workers * (2 * params / GIB + WORKER_HOST_GIB)
    save = workers * WORKER_HOST_GIB + 4 * params / GIB
    return max(load, save), (f"loading {workers} × ({2 * params / GIB:.1f} GiB bf16 weights + "
                             f"{WORKER_HOST_GIB:g} GiB process), saving a float32 state dict on "
                             f"rank 0 {4 * params / GIB:.1f} GiB")


@dataclass
class MemoryReport:
    lines: list[str]  # what the estimate says, for the user
    problems: list[str]  # 'field: problem; change' lines that refuse the sweep
    warnings: list[str]


def memory_report(sweep, gpu_gib: float, source: str = "given") -> MemoryReport:
    """The per-GPU estimate of a trial against its share of a `gpu_gib` GPU (gpus_per_worker ×
    gpu_gib, less the CUDA context; `source` says where gpu_gib came from), and the host memory
    per node. A GPU sweep that does not fit is a problem (a refusal) naming the change that
    fits, unless train.skip_memory_check turns it into a warning; a CPU sweep gets the estimate
    alone."""
    tr = sweep.train
    shape = model_shape(sweep.model)
    if shape is None:
        return MemoryReport([f"memory: not estimated (no local config for model "
                             f"{sweep.model.name!r})"], [], [])
    est = estimate(shape, tr)
    mode = "LoRA" if tr.lora is not None else "full"
    size = f"{shape.params / 1e9:.2f} B" if shape.params >= 1e9 else f"{shape.params / 1e6:.1f} M"
    lines = [f"memory on a GPU (estimate): {size} parameters, {mode} fine-tuning, "
             f"{tr.parallel.upper()} × {tr.workers}, micro-batch {tr.batch_size} × "
             f"{tr.max_length} tokens: {est.describe()}"]
    if tr.gpus_per_worker <= 0:
        return MemoryReport(lines, [], [])
    host, how = host_estimate(shape, tr)
    lines.append(f"host memory per node (estimate, a trial's workers on one node; trials "
                 f"sharing a node add up): ~{host:.0f} GiB at peak ({how})")
    share = tr.gpus_per_worker * gpu_gib - CONTEXT_GIB
    lines[0] += f" of {share:.1f} GiB available ({gpu_gib:g} GiB GPU, {source})"
    if est.total <= share:
        return MemoryReport(lines, [], [])
    problem = (f"train: a trial needs ~{est.total:.1f} GiB per GPU but gets {share:.1f} GiB "
               f"(gpus_per_worker {tr.gpus_per_worker:g} of a {gpu_gib:g} GiB GPU ({source}), "
               f"less {CONTEXT_GIB:g} GiB of CUDA context); {fitting_change(shape, tr, share)}")
    if tr.skip_memory_check:
        return MemoryReport(lines, [], [problem + " (train.skip_memory_check: true: launching "
                                                  "anyway)"])
    return MemoryReport(lines, [problem + "; or set train.skip_memory_check: true to launch "
                                          "anyway"], [])


def fitting_change(shape: ModelShape, train, share: float) -> str:
    """The smallest change of the train fields that brings the estimate under `share`: FSDP
    across the workers, gradient checkpointing, then smaller micro-batches with more
    accumulation (the same global batch)."""
    tries: list[dict] = []
    if train.parallel == "ddp" and train.workers > 1:
        tries.append({"parallel": "fsdp"})
    if not train.gradient_checkpointing:
        tries += [{"gradient_checkpointing": True}, *[{**t, "gradient_checkpointing": True}
                                                     for t in tries]]
    base = tries[-1] if tries else {}
    batch = train.batch_size
    for smaller in (d for d in range(batch - 1, 0, -1) if batch % d == 0):
        tries.append({**base, "batch_size": smaller,
                      "grad_accum": train.grad_accum * batch // smaller})
    for change in tries:
        est = estimate(shape, train.model_copy(update=change))
        if est.total <= share:
            fields = ", ".join(f"train.{k}: {str(v).lower() if isinstance(v, bool) else v}"
                               for k, v in change.items())
            return f"set {fields} (~{est.total:.1f} GiB per GPU)"
    return ("nothing in train fits: use LoRA (train.lora), a smaller model or a larger GPU "
            "(train.gpus_per_worker)")
