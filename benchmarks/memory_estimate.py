"""`sftmix validate`'s memory estimate against measured peaks, on CPU.

    python benchmarks/memory_estimate.py [--sizes 1m,20m,100m] [--batch 4] [--length 256]

For tiny Llamas of about 1 M, 20 M and 100 M parameters built from a config, each in a fresh
process: three optimizer steps of the project's `train_stage` (float32, AdamW, micro-batches of
`batch` samples of exactly `length` tokens, so every micro-batch is as wide as the estimate
assumes), with and without gradient checkpointing. Measured: the process's peak resident memory
(VmHWM, reset first) less its resident memory before the model is built, after one step of a
minute model has warmed up the libraries (lazy imports, thread pools), so the model, gradients,
AdamW state, activations and the loss are what is counted.

What the comparison is: `config.memory.estimate(shape, train, autocast=False,
chunked_loss=False)`, the GPU estimate with float32 activations (CPU has no autocast here) and
transformers' loss (the CPU default), without the 1 GiB CUDA context (CPU has none). CPU's
allocator returns memory to the system unevenly and AdamW's foreach step allocates temporaries,
and the GPU estimate leaves out two CPU-only terms (AdamW's foreach temporaries, the attention
probabilities CPU's sdpa keeps), shown in a column of their own; the GPU figures are checked
against an H100 in tests/config/test_memory.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# (hidden, intermediate, layers, heads, vocab): ~1 M, ~20 M and ~100 M parameters, tied head
SIZES = {"1m": (128, 344, 4, 4, 2048), "20m": (512, 1376, 6, 8, 2048),
         "100m": (768, 2048, 12, 12, 16000)}


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _warm_up(train_stage, build_model, StageData, spec_cls, hp_cls, tokens, np) -> None:
    """One step of a minute model first: the libraries' lazy imports, thread pools and kernel
    caches are allocated then, not counted as the measured model's."""
    spec = spec_cls(hidden_size=16, intermediate_size=32, layers=1, heads=2, max_positions=32,
                    pretrain=None)
    hp = hp_cls(batch_size=2, max_length=32, epochs=1, packing=False, chunked_loss=False,
                compile=False, fused_optimizer=False)
    samples = [(np.arange(3, 35, dtype=np.int32),) * 2 for _ in range(2)]
    from sftmix_ray.config import ModelConfig

    train_stage(build_model(ModelConfig(tiny=spec), 64, tokens, 0, train=hp),
                StageData("w", samples, 1), hp, 0, index=0)


def measure(size: str, batch: int, length: int, checkpointing: bool) -> dict:
    """One size in this process: the estimate and the measured peak, in MiB."""
    from types import SimpleNamespace

    import numpy as np
    import torch

    from sftmix_ray.config import ModelConfig, TinyModelConfig, TrainConfig
    from sftmix_ray.config.memory import GIB, ModelShape, estimate
    from sftmix_ray.train.loop import StageData, train_stage
    from sftmix_ray.train.model import build_model

    torch.set_num_threads(2)
    hidden, inter, layers, heads, vocab = SIZES[size]
    spec = ModelConfig(tiny=TinyModelConfig(hidden_size=hidden, intermediate_size=inter,
                                            layers=layers, heads=heads, max_positions=length,
                                            pretrain=None))
    hp = TrainConfig(batch_size=batch, max_length=length, epochs=1, lr=1e-4,
                     gradient_checkpointing=checkpointing, packing=False, chunked_loss=False,
                     compile=False, fused_optimizer=False)
    rng = np.random.default_rng(0)
    samples = [(ids, ids.copy()) for ids in
               (rng.integers(3, vocab, size=length).astype(np.int32) for _ in range(3 * batch))]
    tokens = SimpleNamespace(bos_token_id=1, eos_token_id=2, pad_token_id=0)
    _warm_up(train_stage, build_model, StageData, TinyModelConfig, TrainConfig, tokens, np)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak (VmHWM) to the current resident set
    base = _status_mib("VmRSS")
    model = build_model(spec, vocab, tokens, 0, train=hp)
    shape = ModelShape(hidden, layers, heads, heads, inter, vocab, tied=True)
    assert shape.params == sum(p.numel() for p in model.parameters())
    train_stage(model, StageData("s", samples, 1), hp, 0, index=0)
    peak = _status_mib("VmHWM")
    est = estimate(shape, hp, autocast=False, chunked_loss=False)
    # Two CPU-only terms the GPU estimate leaves out: AdamW's foreach step (the GPU default is
    # fused) makes a parameter-sized float32 temporary (sqrt of the second moment), and CPU's
    # sdpa (math path) keeps the softmax probabilities and meets their gradient, batch × heads ×
    # length² float32 each, for every layer (one layer under checkpointing).
    attn = 2 * 4 * batch * heads * length ** 2 * (1 if checkpointing else layers)
    cpu_terms = 4 * shape.params + attn
    return {"size": size, "params": shape.params, "checkpointing": checkpointing,
            "estimate_mib": est.total * GIB / 2 ** 20, "measured_mib": peak - base,
            "cpu_terms_mib": cpu_terms / 2 ** 20,
            "parts_mib": {k: getattr(est, k) * GIB / 2 ** 20
                          for k in ("weights", "gradients", "optimizer", "activations", "loss")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1m,20m,100m")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # size:checkpointing, in a child
    args = parser.parse_args()
    if args.one:
        size, ckpt = args.one.split(":")
        print(json.dumps(measure(size, args.batch, args.length, ckpt == "1")))
        return
    print(f"micro-batch {args.batch} × {args.length} tokens, float32 on CPU, 3 AdamW steps; "
          f"MiB (measured: peak RSS less RSS before the model)")
    print(f"{'model':>6} {'params':>9} {'ckpt':>5} {'estimate':>9} {'measured':>9} "
          f"{'est/meas':>8} {'+CPU terms':>10} {'/meas':>6}   estimate's parts "
          f"(weights/grads/optim/acts/loss)")
    for size in args.sizes.split(","):
        for ckpt in (False, True):
            out = subprocess.run([sys.executable, __file__, "--one", f"{size}:{int(ckpt)}",
                                  "--batch", str(args.batch), "--length", str(args.length)],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            parts = "/".join(f"{v:.0f}" for v in r["parts_mib"].values())
            print(f"{size:>6} {r['params'] / 1e6:>8.1f}M {'yes' if ckpt else 'no':>5} "
                  f"{r['estimate_mib']:>9.0f} {r['measured_mib']:>9.0f} "
                  f"{r['estimate_mib'] / r['measured_mib']:>8.2f} "
                  f"{r['estimate_mib'] + r['cpu_terms_mib']:>10.0f} "
                  f"{(r['estimate_mib'] + r['cpu_terms_mib']) / r['measured_mib']:>6.2f}   "
                  f"{parts}", flush=True)


if __name__ == "__main__":
    main()
