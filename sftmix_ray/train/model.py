"""The model a trial fine-tunes: a hub id / local path, or a tiny Llama built from a config; full
fine-tuning or LoRA adapters (peft); optional gradient checkpointing."""

from __future__ import annotations


def build_model(spec, vocab_size: int, tokenizer, seed: int, train=None, base: str | None = None,
                checkpoint_dtype: bool = False):
    """`spec` is the sweep's ModelConfig, `train` its TrainConfig, `base` the lab base model's
    checkpoint a tiny model starts from (train/lab_base.py). The same seed gives the same
    initial weights (and LoRA init) in every trial, so differences between trials come from their
    data, not their initialization. Trained weights are float32 (made so on the device by
    parallel.prepare): bf16 runs under autocast or FSDP's mixed precision, so the optimizer keeps
    full-precision master weights. `checkpoint_dtype`: a hub model stays in its checkpoint's dtype
    on the host, for a caller that makes it float32 on the device (parallel.prepare)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    if base is not None:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a bar per trial for a 4 MB checkpoint is noise
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        if model.get_input_embeddings().num_embeddings != vocab_size:
            raise ValueError(f"the base model at {base} has a vocabulary of "
                             f"{model.get_input_embeddings().num_embeddings}, the tokenizer "
                             f"{vocab_size}")
    elif spec.tiny is not None:
        t = spec.tiny
        cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=t.hidden_size,
                          intermediate_size=t.intermediate_size, num_hidden_layers=t.layers,
                          num_attention_heads=t.heads, num_key_value_heads=t.heads,
                          max_position_embeddings=t.max_positions,
                          bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                          pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
        model = LlamaForCausalLM(cfg)
    else:
        # the checkpoint's own dtype (16-bit for most hub models): one such copy per worker on
        # the host; parallel.prepare makes float32 master weights on the device, layer by layer
        # under FSDP (the values are those a float32 load gives: widening is exact)
        model = AutoModelForCausalLM.from_pretrained(
            spec.name, dtype="auto" if checkpoint_dtype else torch.float32)
    if train is None:
        return model
    if train.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if train.lora is not None:
        model = apply_lora(model, train.lora, train.gradient_checkpointing)
    return model


def apply_lora(model, lora, checkpointing: bool = False):
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ImportError("train.lora needs peft: pip install 'peft>=0.21,<0.22'") from exc
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [m for m in lora.target_modules if m not in names]
    if missing:
        raise ValueError(f"train.lora.target_modules: the model has no modules named {missing}")
    cfg = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                     target_modules=list(lora.target_modules), task_type="CAUSAL_LM")
    if checkpointing:  # frozen embeddings would give checkpointed blocks no input gradient
        model.enable_input_require_grads()
    return get_peft_model(model, cfg)


def trainable_state(model, rank: int = 0) -> dict:
    """What training changes: every weight, or only the adapters under LoRA, on the host. Saved
    at stage ends for the prefix cache and loaded with `load_trainable_state`. Sharded weights
    are gathered: every rank calls this, rank 0 gets the state, the others {}."""
    from .gather import gather_state, trainable_named

    return gather_state(trainable_named(model), rank)


def load_trainable_state(model, state: dict, rank: int = 0, world: int = 1) -> None:
    """`state` (rank 0's; the others pass {}) into `model`, sharded or not."""
    from .gather import load_state

    load_state(model, state, rank, world)
