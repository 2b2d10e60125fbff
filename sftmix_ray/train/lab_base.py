"""The lab base model: the tiny Llama pretrained on the lab's web text, built once and cached by
the content of everything that determines its weights.

The study fine-tunes a pretrained LLaMA; the lab does the same with this model, so SFT aligns skills
the base already has instead of teaching them from nothing. It is built in the driver (or by
`sftmix lab pretrain`) before any trial starts, with the project's own training loop, and saved as
a Hugging Face checkpoint under the sweep's cache, where trials load it like any local model.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import publish_dir, write_atomic
from ..config.model import ModelConfig
from ..config.schema import TrainConfig
from ..data import lab, lab_web
from ..digests import digest, file_digest
from ..progress import Bar

BASE_VERSION = 1
INFO_FILE = "lab_base.json"
# Bases built once by the maintainers and shipped in the package, by content key
# (scripts/ship_lab_base.py): a fresh clone's quickstart copies its base instead of spending five
# minutes of two cores building it. Used only under the key the sweep computes, so a change to
# the lab, the model or the pretraining makes the sweep build its own.
SHIPPED = Path(__file__).parent / "lab_base_shipped"


@dataclass(frozen=True)
class LabBase:
    path: str   # a Hugging Face checkpoint directory
    key: str    # content key: what determines the weights
    info: dict  # how it was built: documents, tokens, final loss, seconds
    built: bool  # True when this call built it (False: from the cache)


def lab_base_key(model: ModelConfig, tokenizer_dir: str) -> str:
    tiny = model.tiny.model_dump(mode="json", exclude={"pretrain"})
    return digest({"v": BASE_VERSION, "tiny": tiny,
                   "pretrain": model.lab_base.model_dump(mode="json"),
                   "tokenizer": Path(tokenizer_dir).name,
                   "code": [file_digest(Path(lab.__file__)), file_digest(Path(lab_web.__file__))]},
                  length=20)


def lab_version(sweep) -> dict:
    """What a lab measurement depends on, named: the base model's content key (its model,
    pretraining, tokenizer and the lab's generators), the lab data generators' own digest, and
    the sweep's data, model, training and evaluation settings (the training seed aside: seed
    repeats are one lab). `version` digests them all; a landscape measured under another version
    is another lab's (benchmarks/landscape.py refuses to mix them)."""
    from ..data.prepare import lab_base_tokenizer_name

    model = sweep.model
    base = lab_base_key(model, lab_base_tokenizer_name(model)) if model.lab_base else None
    settings = {"domains": {n: d.model_dump(mode="json") for n, d in sweep.domains.items()},
                "model": model.model_dump(mode="json"),
                "train": sweep.train.model_dump(mode="json", exclude={"seed"}),
                "evaluate": sweep.evaluate.model_dump(mode="json")}
    parts = {"base_key": base, "lab_data": file_digest(Path(lab.__file__)),
             "settings": digest(settings)}
    return {"version": digest(parts, length=12), **parts}


def lab_base_at_hand(model: ModelConfig, tokenizer_dir: str, cache: str | Path) -> bool:
    """Whether this base model needs no build: in the cache, or shipped with the package (a
    copy away). False also when there is none to build."""
    if model.lab_base is None:
        return False
    name = f"lab-base-{lab_base_key(model, tokenizer_dir)}"
    return any((where / name / INFO_FILE).is_file() for where in (Path(cache), SHIPPED))


def ensure_lab_base(model: ModelConfig, tokenizer_dir: str, cache: str | Path, *,
                    threads: int | None = None, say=None) -> LabBase | None:
    """The sweep's lab base model from the cache, built first if missing; None when the sweep
    fine-tunes something else (a hub model, or a tiny one with `pretrain: null`)."""
    if model.lab_base is None:
        return None
    key = lab_base_key(model, tokenizer_dir)
    final = Path(cache) / f"lab-base-{key}"
    if (final / INFO_FILE).is_file():
        return LabBase(str(final), key, json.loads((final / INFO_FILE).read_text()), False)
    shipped = SHIPPED / f"lab-base-{key}"
    if (shipped / INFO_FILE).is_file():
        if say is not None:
            say(f"lab base model {key}: shipped with sftmix-ray (the same key; built by "
                f"scripts/ship_lab_base.py), copied to {final.parent}")
        Path(cache).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            shutil.copytree(shipped, Path(tmp) / "base")
            publish_dir(Path(tmp) / "base", final)
        return LabBase(str(final), key, json.loads((final / INFO_FILE).read_text()), False)
    if say is not None:
        say(f"building the lab base model {key} (once; cached under {final.parent})")
    Path(cache).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        info = build_lab_base(model, tokenizer_dir, Path(tmp) / "base", threads=threads)
        write_atomic(Path(tmp) / "base" / INFO_FILE, json.dumps({"key": key, **info}, indent=1))
        publish_dir(Path(tmp) / "base", final)
    return LabBase(str(final), key, json.loads((final / INFO_FILE).read_text()), True)


def build_lab_base(model: ModelConfig, tokenizer_dir: str, out: Path, *,
                   threads: int | None = None) -> dict:
    """Pretrain the tiny Llama on the web corpus and save it to `out`. Deterministic for the
    config and thread count: the same seed gives the same weights."""
    import torch

    from ..data.tokenizer import load_tokenizer
    from .loop import StageData, train_stage
    from .model import build_model

    cfg = model.lab_base
    if threads:
        torch.set_num_threads(threads)
    tok = load_tokenizer(tokenizer_dir)
    docs = lab_web.web_corpus(cfg.docs, cfg.shares, cfg.seed)
    samples = _rows(docs, tok, min(cfg.row_tokens, model.tiny.max_positions))
    hp = TrainConfig(lr=cfg.lr, epochs=cfg.epochs, batch_size=cfg.batch_size, warmup_ratio=0.02,
                     max_length=model.tiny.max_positions, seed=cfg.seed)
    net = build_model(model, len(tok), tok, cfg.seed)
    t0 = time.perf_counter()
    with Bar("lab base model", total=None, unit="steps") as bar:
        def on_step(step: int, total: int, loss) -> None:
            if bar.enabled:  # reading the loss back costs a sync: only for a bar shown
                bar.set_total(total)
                bar.update(1, loss=float(loss))

        record = train_stage(net, StageData("pretrain", samples, cfg.epochs), hp,
                             tok.pad_token_id, index=0, on_step=on_step)
    seconds = time.perf_counter() - t0
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    net.save_pretrained(str(out))
    return {"docs": len(docs), "tokens": int(sum(len(ids) for ids, _ in samples)),
            "steps": record["steps"], "loss": record["loss"], "seconds": round(seconds, 1)}


def _rows(docs: list[str], tok, width: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The documents as one stream (each between BOS and EOS) cut into rows of `width` tokens,
    every token a target: plain language-model pretraining. Web documents are a few dozen
    tokens, so padded batches would spend most steps on overhead; full rows do not. Attention
    crosses document boundaries within a row, as in GPT-style pretraining."""
    ids = tok(docs, add_special_tokens=False)["input_ids"]
    stream = np.fromiter((t for doc in ids for t in (tok.bos_token_id, *doc, tok.eos_token_id)),
                         dtype=np.int64)
    rows = stream[: len(stream) // width * width].reshape(-1, width)
    return [(row, row.copy()) for row in rows]
