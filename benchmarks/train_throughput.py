"""SFT throughput: our in-worker loop against a plain Hugging Face `Trainer`, same model, same data.

    python benchmarks/train_throughput.py [--samples 1200] [--repeats 2]

Model: the quickstart's tiny Llama (128 hidden, 4 layers). Data, for varied lengths: real GSM8K
train answers (long) with lab code and general (short), tokenized by our cache, so every contender
trains on the same token ids and label masks. One epoch, batch 16, AdamW, warmup + cosine, grad
clipping, 2 CPU
threads. Effective tokens/s counts real (non-padding) tokens only. Runs alternate, and each
figure is the median over repeats.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab_setup import DOMAINS, bench_sweep  # noqa: E402

from sftmix_ray.data.mixture import select_indices  # noqa: E402
from sftmix_ray.data.prepare import prepare  # noqa: E402
from sftmix_ray.data.tokenizer import load_tokenizer  # noqa: E402
from sftmix_ray.train.loop import StageData, select, train_stage  # noqa: E402
from sftmix_ray.train.model import build_model  # noqa: E402


def hf_trainer_run(model, samples, tokenizer, hp, group_by_length: bool) -> float:
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    rows = [{"input_ids": ids.tolist(), "labels": labels.tolist()} for ids, labels in samples]
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=hp.batch_size, num_train_epochs=1,
            learning_rate=hp.lr, warmup_steps=hp.warmup_ratio, lr_scheduler_type="cosine",
            weight_decay=hp.weight_decay, max_grad_norm=hp.max_grad_norm, report_to="none",
            save_strategy="no", logging_strategy="no", use_cpu=True, dataloader_num_workers=0,
            train_sampling_strategy="group_by_length" if group_by_length else "random",
            disable_tqdm=True, seed=0)
        trainer = Trainer(model=model, args=args, train_dataset=rows,
                          data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True,
                                                               label_pad_token_id=-100))
        t = time.perf_counter()
        trainer.train()
        return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=1200)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        sweep = bench_sweep(tmp, real_math=True)
        prepared = prepare(sweep, Path(tmp) / "cache")
        tokenizer = load_tokenizer(prepared.tokenizer_dir)
        samples = []
        for d in DOMAINS:
            td = prepared.tokenized(d)
            samples.extend(select(td, select_indices(d, len(td), args.samples // 3, 0)))
        real_tokens = sum(len(ids) for ids, _ in samples)
        lengths = [len(ids) for ids, _ in samples]
        hp = sweep.train

        def ours(packing: bool) -> float:
            model = build_model(sweep.model, len(tokenizer), tokenizer, 0)
            h = hp.model_copy(update={"packing": packing})
            t = time.perf_counter()
            train_stage(model, StageData("s", samples, 1), h, tokenizer.pad_token_id, index=0)
            return time.perf_counter() - t

        def hf(group: bool) -> float:
            model = build_model(sweep.model, len(tokenizer), tokenizer, 0)
            return hf_trainer_run(model, samples, tokenizer, hp, group)

        contenders = {"HF Trainer": lambda: hf(False),
                      "HF Trainer, group_by_length": lambda: hf(True),
                      "sftmix, length-grouped": lambda: ours(False),
                      "sftmix, packed": lambda: ours(True)}
        times: dict[str, list[float]] = {k: [] for k in contenders}
        ours(False)  # warm-up: first-call costs (allocator, kernels) land on no contender
        for _ in range(args.repeats):
            for name, run in contenders.items():
                times[name].append(run())
        print(f"{len(samples)} samples, {real_tokens} real tokens, lengths {min(lengths)}–"
              f"{max(lengths)} (mean {real_tokens / len(samples):.0f}), batch 16, 1 epoch, "
              f"{args.threads} threads, median of {args.repeats}")
        base = real_tokens / statistics.median(times["HF Trainer"])
        for name, ts in times.items():
            tps = real_tokens / statistics.median(ts)
            print(f"{name:30} {statistics.median(ts):7.1f} s {tps:9.0f} tokens/s "
                  f"{tps / base:5.2f}x")
        print("goals: length-grouped >= 1.0x, packed >= 1.5x (effective tokens/s vs HF Trainer)")


if __name__ == "__main__":
    main()
