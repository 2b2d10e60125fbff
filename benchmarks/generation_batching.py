"""Batched vs one-at-a-time greedy generation, side by side in one process.

    python benchmarks/generation_batching.py [--prompts 64] [--batch 64] [--layers 4]

The quickstart's model shape (tiny Llama, 128 hidden, 4 layers; untrained weights, so outputs run
to max_new_tokens) on lab math prompts with the Vicuna template. Both runs produce identical
completions (asserted); the ratio is prompts/s batched over prompts/s one at a time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sftmix_ray.config.presets import LAB_FORMATS  # noqa: E402
from sftmix_ray.data import lab  # noqa: E402
from sftmix_ray.data.formats import to_messages  # noqa: E402
from sftmix_ray.data.template import VicunaTemplate  # noqa: E402
from sftmix_ray.data.tokenizer import train_lab_tokenizer  # noqa: E402
from sftmix_ray.evaluate.generate import Sampling, generate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(args.threads)
    template = VicunaTemplate()
    texts = [t for d in lab.LAB_DOMAINS for r in lab.lab_train(d, 500)
             for t, _ in template.segments(to_messages(r, LAB_FORMATS[d]))]
    with tempfile.TemporaryDirectory() as tmp:
        tok = train_lab_tokenizer(texts, 1024, Path(tmp))
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=128, intermediate_size=256,
        num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=4,
        max_position_embeddings=512, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, tie_word_embeddings=True))
    prompts = [template.prompt(p["question"]) for p in lab.lab_eval("math", args.prompts)]
    sampling = Sampling(max_new_tokens=args.max_new_tokens)
    generate(model, tok, prompts[:2], sampling, batch_size=2)  # warm-up

    t = time.perf_counter()
    batched = generate(model, tok, prompts, sampling, batch_size=args.batch)
    t_batched = time.perf_counter() - t
    t = time.perf_counter()
    single = [generate(model, tok, [p], sampling, batch_size=1)[0] for p in prompts]
    t_single = time.perf_counter() - t
    assert batched == single, "batching changed a greedy completion"
    n_tokens = sum(len(tok(o[0], add_special_tokens=False)["input_ids"]) for o in batched)
    print(f"{len(prompts)} prompts, {n_tokens} generated tokens, {args.threads} threads")
    print(f"one at a time : {t_single:7.2f} s  {len(prompts) / t_single:7.1f} prompts/s")
    print(f"batch {args.batch:<7} : {t_batched:7.2f} s  {len(prompts) / t_batched:7.1f} prompts/s")
    print(f"batched / one-at-a-time throughput: {t_single / t_batched:.1f}x")


if __name__ == "__main__":
    main()
