"""A trial's SFT and generation speed on one GPU: the project's settings against today's defaults
and the Hugging Face `Trainer`, on the same model and data.

    python benchmarks/gpu_throughput.py              # the 1.09 B Llama of issue 17, on a GPU
    python benchmarks/gpu_throughput.py --size tiny  # CPU smoke test (seconds)

Runs on a bare GPU node: imports torch, transformers, peft, numpy, pydantic and the project's
train/evaluate modules only (no Ray, Optuna, MLflow or datasets). The model is built from a
config with random weights (hidden 2048, 20 layers, 16 heads, intermediate 5632, vocabulary
32 000, tied embeddings: 1.09 B parameters); the data are synthetic samples of 64-1023 tokens
(mean ~545), a quarter of each a prompt without loss. Each configuration runs in a fresh
process: a warm-up stage (compilation, allocator), then the measured stage.

- `sftmix grouped (before)`: length-grouped padded batches, float32 weights + bf16 autocast,
  plain AdamW, transformers' loss: the trial's settings before issue 17.
- `sftmix trial (GPU defaults)`: the trial's settings now (train/speed.py): rows packed to
  max_length, chunked loss, fused AdamW, compiled decoder layers, expandable segments.
- `HF Trainer group_by_length`: bf16, group_by_length, its default (fused) AdamW.
- generation: 64 prompts x 128 new tokens through evaluate.generate, float32 weights against the
  bf16 copy a trial now generates with (evaluate.precision).

Prints tokens/s (real tokens only), MFU = 6·N·tokens/s ÷ peak bf16 FLOP/s, padding share, peak
memory, final loss (equal-loss check), and the ratios the issue's goals name.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZES = {  # model, data and generation shape per size
    "1b": dict(hidden=2048, layers=20, heads=16, inter=5632, vocab=32000, max_length=1024,
               lo=64, batch=16, samples=448, warm=64, prompts=64, prompt_len=96, new_tokens=128),
    "tiny": dict(hidden=64, layers=2, heads=4, inter=128, vocab=512, max_length=64, lo=8,
                 batch=4, samples=48, warm=8, prompts=4, prompt_len=12, new_tokens=4),
}
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "A100": 312e12, "L40S": 362e12}
CONFIGS = ("sftmix grouped (before)", "sftmix trial (GPU defaults)", "HF Trainer group_by_length",
           "generate float32", "generate bfloat16")


def build(size: dict):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=size["vocab"], hidden_size=size["hidden"],
                      intermediate_size=size["inter"], num_hidden_layers=size["layers"],
                      num_attention_heads=size["heads"], num_key_value_heads=size["heads"],
                      max_position_embeddings=size["max_length"], tie_word_embeddings=True,
                      bos_token_id=1, eos_token_id=2, pad_token_id=0)
    return LlamaForCausalLM(cfg)


def synthetic(size: dict, n: int, seed: int):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        ids = rng.integers(3, size["vocab"], size=int(rng.integers(size["lo"],
                                                                   size["max_length"])))
        labels = ids.copy()
        labels[:len(ids) // 4] = -100
        out.append((ids.astype(np.int32), labels.astype(np.int32)))
    return out


def _device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _sync_reset(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peaks(device) -> tuple[float | None, float | None]:
    import torch

    if device.type != "cuda":
        return None, None
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() / 2 ** 30,
            torch.cuda.max_memory_reserved() / 2 ** 30)


def run_sftmix(size: dict, trial: bool) -> dict:
    """Our loop: train_stage on a warm-up stage, then the measured one."""

    from sftmix_ray.config import TrainConfig
    from sftmix_ray.train.loop import StageData, amp_dtype, train_stage
    from sftmix_ray.train.speed import resolve_speed, set_allocator, train_module

    device = _device()
    before = dict(packing=False, compile=False, fused_optimizer=False, chunked_loss=False,
                  attention="sdpa", expandable_segments=False)
    # on CPU (the smoke test) compiling takes minutes on 2 cores: every other option is on
    now = {} if device.type == "cuda" else dict(packing=True, chunked_loss=True,
                                                fused_optimizer=True)
    hp = TrainConfig(lr=2e-5, epochs=1, batch_size=size["batch"], max_length=size["max_length"],
                     warmup_ratio=0.03, **(now if trial else before))
    set_allocator(hp.expandable_segments)
    model = build(size).to(device)
    speed = resolve_speed(hp, device)
    module = train_module(model, speed)
    autocast = amp_dtype("auto", device)
    kwargs = dict(device=device, autocast_dtype=autocast, speed=speed)
    train_stage(module, StageData("warm", synthetic(size, size["warm"], 1), 1), hp, 0, index=0,
                **kwargs)
    _sync_reset(device)
    t = time.perf_counter()
    record = train_stage(module, StageData("measured", synthetic(size, size["samples"], 2), 1),
                         hp, 0, index=1, **kwargs)  # ends with a read-back: the GPU is done
    seconds = time.perf_counter() - t
    alloc, reserved = _peaks(device)
    return {"tokens": record["tokens"], "seconds": seconds, "loss": record["loss"],
            "padding": 1 - record["tokens"] / record["positions"], "peak_alloc": alloc,
            "peak_reserved": reserved, "params": sum(p.numel() for p in model.parameters()),
            "options": speed.summary()}


def run_hf(size: dict) -> dict:
    """transformers' Trainer on the same data: bf16 on a GPU, group_by_length."""
    import tempfile

    import torch
    from transformers import Trainer, TrainingArguments

    device = _device()
    model = build(size)
    positions = [0]

    def collate(features):  # pad to the batch's longest, counting positions for the padding share
        width = max(len(f["input_ids"]) for f in features)
        ids = torch.zeros((len(features), width), dtype=torch.long)
        labels = torch.full_like(ids, -100)
        mask = torch.zeros_like(ids)
        for r, f in enumerate(features):
            n = len(f["input_ids"])
            ids[r, :n], labels[r, :n] = torch.tensor(f["input_ids"]), torch.tensor(f["labels"])
            mask[r, :n] = 1
        positions[0] += ids.numel()
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    def fit(samples, out):
        rows = [{"input_ids": i.tolist(), "labels": lab.tolist()} for i, lab in samples]
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=size["batch"], num_train_epochs=1,
            learning_rate=2e-5, warmup_steps=0.03, lr_scheduler_type="cosine",
            bf16=device.type == "cuda", use_cpu=device.type != "cuda", report_to="none",
            save_strategy="no", logging_strategy="no", dataloader_num_workers=0,
            train_sampling_strategy="group_by_length", disable_tqdm=True, seed=0,
            remove_unused_columns=False)
        trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=collate)
        return trainer.train().training_loss

    with tempfile.TemporaryDirectory() as out:
        fit(synthetic(size, size["warm"], 1), out)
        positions[0] = 0
        _sync_reset(device)
        measured = synthetic(size, size["samples"], 2)
        t = time.perf_counter()
        loss = fit(measured, out)
        seconds = time.perf_counter() - t
    tokens = sum(len(i) for i, _ in measured)
    alloc, reserved = _peaks(device)
    return {"tokens": tokens, "seconds": seconds, "loss": loss, "padding": 1 - tokens /
            positions[0], "peak_alloc": alloc, "peak_reserved": reserved,
            "params": sum(p.numel() for p in model.parameters())}


class _Digits:
    """A tokenizer for synthetic prompts: each character its own id; no end-of-sequence token,
    so every completion runs the full max_new_tokens and both dtypes generate the same count."""
    bos_token_id, eos_token_id, pad_token_id = 1, None, 0

    def __init__(self, vocab: int):
        self.vocab = vocab

    def __call__(self, texts, add_special_tokens=False):
        return {"input_ids": [[3 + ord(c) % (self.vocab - 3) for c in t] for t in texts]}

    def batch_decode(self, rows, skip_special_tokens=True):
        return ["".join(chr(48 + int(x) % 10) for x in row) for row in rows]


def run_generate(size: dict, dtype: str) -> dict:
    from sftmix_ray.evaluate.generate import Sampling, generate
    from sftmix_ray.evaluate.precision import generation_model

    device = _device()
    model = build(size).to(device)
    rng = np.random.default_rng(3)
    prompts = ["".join(chr(97 + int(c)) for c in rng.integers(0, 26, size["prompt_len"] +
                                                             int(rng.integers(0, 32))))
               for _ in range(size["prompts"])]
    sampling = Sampling(max_new_tokens=size["new_tokens"])
    with generation_model(model, dtype) as gen:
        generate(gen, _Digits(size["vocab"]), prompts[:2], Sampling(max_new_tokens=2))  # warm-up
        _sync_reset(device)
        t = time.perf_counter()
        generate(gen, _Digits(size["vocab"]), prompts, sampling, batch_size=size["prompts"])
        seconds = time.perf_counter() - t
    alloc, reserved = _peaks(device)
    return {"tokens": size["prompts"] * size["new_tokens"], "seconds": seconds,
            "peak_alloc": alloc, "peak_reserved": reserved}


def one(name: str, size: dict) -> dict:
    if name.startswith("sftmix"):
        return run_sftmix(size, trial="trial" in name)
    if name.startswith("HF"):
        return run_hf(size)
    return run_generate(size, name.split()[-1])


def peak_flops() -> tuple[float | None, str]:
    import torch

    if not torch.cuda.is_available():
        return None, "cpu"
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16.items() if k in name), None), name


def table(results: dict, flops: float | None) -> list[str]:
    lines = [f"{'configuration':30}{'tokens/s':>11}{'MFU':>8}{'padding':>9}{'peak GiB':>16}"
             f"{'loss':>8}"]
    for name, r in results.items():
        if "error" in r:
            lines.append(f"{name:30} failed: {r['error']}")
            continue
        tps = r["tokens"] / r["seconds"]
        mfu = f"{6 * r['params'] * tps / flops:.1%}" if flops and "params" in r else "n/a"
        pad = f"{r['padding']:.1%}" if "padding" in r else ""
        mem = f"{r['peak_alloc']:.1f}/{r['peak_reserved']:.1f}" if r["peak_alloc"] else "n/a"
        loss = f"{r['loss']:.3f}" if "loss" in r else ""
        lines.append(f"{name:30}{tps:11.0f}{mfu:>8}{pad:>9}{mem:>16}{loss:>8}")
    return lines


def ratios(results: dict) -> list[str]:
    def tps(name):
        r = results.get(name, {})
        return r["tokens"] / r["seconds"] if "tokens" in r else float("nan")

    trial = tps("sftmix trial (GPU defaults)")
    return [f"trial / HF Trainer tokens/s: {trial / tps('HF Trainer group_by_length'):.2f}x "
            f"(goal >= 1.5x)",
            f"trial / before tokens/s: {trial / tps('sftmix grouped (before)'):.2f}x",
            f"generation bf16 / float32: {tps('generate bfloat16') / tps('generate float32'):.2f}x"
            f" (goal >= 1.8x)"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="1b")
    ap.add_argument("--only", action="append", choices=CONFIGS, help="run only these")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--one", choices=CONFIGS, help=argparse.SUPPRESS)  # a child process
    ap.add_argument("--timeout", type=float, default=1800)
    args = ap.parse_args()
    size = SIZES[args.size]
    if args.one:
        result = one(args.one, size)
        # what a bare GPU node may lack: our own rows must not need it (the Trainer's may)
        result["heavy_modules"] = [m for m in ("ray", "optuna", "mlflow", "datasets")
                                   if m in sys.modules]
        print(json.dumps(result))
        return
    results = {}
    for name in args.only or CONFIGS:
        proc = subprocess.run([sys.executable, __file__, "--size", args.size, "--one", name],
                              capture_output=True, text=True, timeout=args.timeout,
                              env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
        last = proc.stdout.strip().splitlines()[-1:] if proc.returncode == 0 else []
        results[name] = json.loads(last[0]) if last else \
            {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]}
    flops, device = peak_flops()
    print(f"{device}, size {args.size}: {json.dumps(size)}; each configuration in a fresh "
          f"process; peak GiB = allocated/reserved")
    print("\n".join(table(results, flops) + ratios(results)))
    if args.json:
        args.json.write_text(json.dumps({"device": device, "size": args.size,
                                         "results": results}, indent=1))
    if any("error" in r for r in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
