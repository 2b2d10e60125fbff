"""The model a trial fine-tunes: a hub id / local path, or a tiny Llama built from a config."""

from __future__ import annotations


def build_model(spec, vocab_size: int, tokenizer, seed: int):
    """`spec` is the sweep's ModelConfig. The same seed gives the same initial weights in every trial,
    so differences between trials come from their data, not their initialization."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    if spec.tiny is not None:
        t = spec.tiny
        cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=t.hidden_size,
                          intermediate_size=t.intermediate_size, num_hidden_layers=t.layers,
                          num_attention_heads=t.heads, num_key_value_heads=t.heads,
                          max_position_embeddings=t.max_positions,
                          bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                          pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
        return LlamaForCausalLM(cfg)
    return AutoModelForCausalLM.from_pretrained(spec.name, dtype=torch.float32)
