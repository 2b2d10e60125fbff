"""Prepare a sweep's data once, in the driver: raw rows → messages → tokens, cached by content hash.

Each domain is tokenized once per (source fingerprint, format, tokenizer, template, max length,
over-long policy) and cached under the sweep's storage, so trials build their mixtures by index
selection alone, on any node that sees the storage, and a second sweep over the same data
tokenizes nothing. Changing one domain re-tokenizes only that domain.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import publish_dir, write_atomic
from ..config.presets import LAB_DEFAULT_POOL, LAB_FORMATS
from ..digests import digest, file_digest
from ..progress import Bar
from . import lab, lab_web
from .formats import SKIP_REASONS, MalformedRow, to_messages
from .template import template_for
from .tokenize import TokenizedDomain, tokenize_conversations

CACHE_VERSION = 2
LAB_TOKENIZER_CORPUS = 2000  # conversations per domain the lab BPE is fitted on
LAB_TOKENIZER_WEB = 4000  # web documents the lab base model's BPE also sees
TOKENIZER_WEB_SHARES = {"facts": 1.0, "stories": 1.0, "code": 1.0, "chat": 1.0}
_TABLE_TYPES = {".parquet": "parquet", ".arrow": "arrow"}
_JSON_TYPES = (".json", ".jsonl")


class DataError(ValueError):
    """A domain that cannot be read; the message names the sweep field at fault."""


@dataclass
class PreparedData:
    root: str
    key: str
    tokenizer_dir: str
    template: dict
    domains: dict[str, dict]  # name -> {"path", "key", "fingerprint", "size", "rows", ...}
    built: list[str] = field(default_factory=list)  # what this call tokenized (not cache hits)

    def tokenized(self, domain: str) -> TokenizedDomain:
        return TokenizedDomain.load(self.domains[domain]["path"])


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


# ---------------------------------------------------------------- reading raw rows


class DomainSource:
    """One domain's raw rows and a fingerprint of them. Local and lab fingerprints come from the
    bytes (or generator code) without parsing, so a cache hit reads nothing else."""

    def __init__(self, name: str, dom):
        self.name, self.dom = name, dom
        self.field = f"domains.{name}.source"
        self._rows: list | None = None
        self._bad_json = 0
        self.format = dom.format or LAB_FORMATS.get(name)
        self.fingerprint = self._local_fingerprint()

    def _local_fingerprint(self) -> str | None:
        dom = self.dom
        if dom.is_lab:
            code = file_digest(Path(lab.__file__))
            return f"lab:{code}:{self.name}:{dom.pool or LAB_DEFAULT_POOL}"
        if _is_url(dom.source):
            return None
        path = Path(dom.source)
        if path.is_file():
            return f"file:{file_digest(path)}"
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and ".cache" not in p.parts)
            return "dir:" + digest([(str(p.relative_to(path)), file_digest(p)) for p in files])
        if path.suffix in (*_JSON_TYPES, *_TABLE_TYPES):
            raise DataError(f"{self.field}: no such file {dom.source}")
        return None  # a hub id: known once loaded

    def rows(self) -> list:
        if self._rows is None:
            self._rows = self._read()
            if self.fingerprint is None:
                self.fingerprint = f"hub:{self._hub_fingerprint}"
        return self._rows

    def _read(self) -> list:
        dom = self.dom
        if dom.is_lab:
            return lab.lab_train(self.name, dom.pool or LAB_DEFAULT_POOL)
        path = Path(dom.source)
        if path.is_file() and path.suffix in _JSON_TYPES:
            return self._read_json(path.read_text(encoding="utf-8", errors="replace"))
        try:
            import datasets
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise DataError(f"{self.field}: reading it needs `pip install datasets`") from exc
        try:
            if path.is_file():
                if path.suffix not in _TABLE_TYPES:
                    raise DataError(f"{self.field}: unknown file type {path.suffix!r} (use "
                                    f".json, .jsonl, .parquet or .arrow)")
                ds = datasets.load_dataset(_TABLE_TYPES[path.suffix], data_files=str(path),
                                           split="train")
            elif _is_url(dom.source):
                suffix = Path(dom.source.split("?")[0]).suffix
                kind = "json" if suffix in _JSON_TYPES else _TABLE_TYPES.get(suffix)
                if kind is None:
                    raise DataError(f"{self.field}: a URL must end in .json, .jsonl, .parquet "
                                    f"or .arrow")
                ds = datasets.load_dataset(kind, data_files=dom.source, split="train")
            else:  # a hub id, or a local dataset directory laid out like one
                ds = datasets.load_dataset(dom.source, name=dom.subset, split=dom.split,
                                           data_files=dom.data_files, revision=dom.revision)
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"{self.field}: cannot load {dom.source!r}: "
                            f"{type(exc).__name__}: {exc}") from exc
        self._hub_fingerprint = f"{getattr(ds, '_fingerprint', '')}:{dom.revision or ''}"
        return list(ds)

    def _read_json(self, text: str) -> list:
        """Plain JSON parsing, row by row: pyarrow's loader would refuse a whole file for one row
        of the wrong type, and such rows must be skipped and counted instead."""
        stripped = text.lstrip()
        if stripped.startswith("["):
            try:
                data = json.loads(stripped)
            except json.JSONDecodeError as exc:
                raise DataError(f"{self.field}: not valid JSON: {exc}") from None
            return data
        rows = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                rows.append(_NotJson)
        return rows

    def fingerprint_for_corpus(self) -> str:
        """What the lab BPE depends on. It sees only the first LAB_TOKENIZER_CORPUS conversations,
        and lab generators are prefix-stable, so a larger lab pool keeps the same tokenizer."""
        if self.dom.is_lab:
            fp = self.fingerprint.rsplit(":", 1)[0]
            return f"{fp}:{min(self.dom.pool or LAB_DEFAULT_POOL, LAB_TOKENIZER_CORPUS)}"
        self.rows()
        return self.fingerprint

    def conversations(self) -> tuple[list[list[dict]], Counter]:
        convs, skipped = [], Counter()
        for row in self.rows():
            if row is _NotJson:
                skipped["wrong_type"] += 1
                continue
            try:
                convs.append(to_messages(row, self.format))
            except MalformedRow as bad:
                skipped[bad.reason] += 1
        return convs, skipped


_NotJson = object()


# ---------------------------------------------------------------- tokenizer


def _tokenizer_files_digest(directory: Path) -> str:
    files = sorted(p for p in directory.iterdir() if p.is_file())
    return digest([(p.name, file_digest(p)) for p in files])


def lab_base_tokenizer_name(model) -> str:
    """The directory name (content key) of the lab base model's tokenizer, computed without
    building it (the lab's version names the base model by it: train/lab_base.lab_version)."""
    key = digest({"v": CACHE_VERSION, "kind": "lab-base-bpe", "vocab": model.lab_vocab_size,
                  "corpus": [LAB_TOKENIZER_CORPUS, LAB_TOKENIZER_WEB],
                  "code": [file_digest(Path(lab.__file__)), file_digest(Path(lab_web.__file__))]})
    return f"tokenizer-{key}"


def _lab_base_tokenizer(model, cache: Path) -> Path:
    """The lab base model's tokenizer: fitted on the lab's web text and all three lab domains,
    whatever domains this sweep declares, so one base model serves every lab sweep (as a hub
    model's tokenizer does); a sweep's other domains are tokenized with it, byte-level."""
    from .lab_web import web_corpus

    final = cache / lab_base_tokenizer_name(model)
    if not (final / "tokenizer.json").is_file():
        from .template import VicunaTemplate
        from .tokenizer import train_lab_tokenizer

        template = VicunaTemplate()
        corpus = web_corpus(LAB_TOKENIZER_WEB, TOKENIZER_WEB_SHARES)
        for domain, fmt in LAB_FORMATS.items():
            corpus += [text for row in lab.lab_train(domain, LAB_TOKENIZER_CORPUS)
                       for text, _ in template.segments(to_messages(row, fmt))]
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            train_lab_tokenizer(corpus, model.lab_vocab_size, Path(tmp) / "tok")
            publish_dir(Path(tmp) / "tok", final)
    return final


def _prepare_tokenizer(sweep, sources: dict[str, DomainSource], cache: Path) -> Path:
    model = sweep.model
    if model.lab_base is not None:
        return _lab_base_tokenizer(model, cache)
    if model.tokenizer is None and model.tiny is not None:
        key = digest({"v": CACHE_VERSION, "kind": "lab-bpe", "vocab": model.lab_vocab_size,
                       "corpus": LAB_TOKENIZER_CORPUS,
                       "domains": {n: [s.fingerprint_for_corpus(), s.format]
                                   for n, s in sorted(sources.items())}})
        final = cache / f"tokenizer-{key}"
        if not (final / "tokenizer.json").is_file():
            from .template import VicunaTemplate
            from .tokenizer import train_lab_tokenizer

            template = VicunaTemplate()
            corpus = [text for s in sources.values()
                      for conv in s.conversations()[0][:LAB_TOKENIZER_CORPUS]
                      for text, _ in template.segments(conv)]
            with tempfile.TemporaryDirectory(dir=cache) as tmp:
                train_lab_tokenizer(corpus, model.lab_vocab_size, Path(tmp) / "tok")
                publish_dir(Path(tmp) / "tok", final)
        return final
    from .tokenizer import load_tokenizer

    tok = load_tokenizer(model.tokenizer or model.name)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        tok.save_pretrained(str(Path(tmp) / "tok"))
        final = cache / f"tokenizer-{_tokenizer_files_digest(Path(tmp) / 'tok')}"
        if not final.is_dir():
            publish_dir(Path(tmp) / "tok", final)
    return final


# ---------------------------------------------------------------- the whole preparation


def prepare(sweep, cache_root: str | Path) -> PreparedData:
    from .tokenizer import load_tokenizer

    cache = Path(cache_root).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    sources = {name: DomainSource(name, dom) for name, dom in sweep.domains.items()}
    tok_dir = _prepare_tokenizer(sweep, sources, cache)
    tokenizer = load_tokenizer(str(tok_dir))
    template = template_for(sweep.model.template, tokenizer)
    tok_key = tok_dir.name.removeprefix("tokenizer-")

    domains, built = {}, []
    with Bar("preparing data", total=len(sources), unit="domains") as bar:
        for name, src in sources.items():
            bar.update(0, domain=name)
            domains[name] = _domain(name, src, sweep, cache, tokenizer, template, tok_key, built)
            bar.update(1, domain=name)
    key = digest({"domains": {n: d["key"] for n, d in domains.items()}, "tokenizer": tok_key})
    return PreparedData(root=str(cache), key=key, tokenizer_dir=str(tok_dir),
                        template=template.spec(), domains=domains, built=built)


def _domain(name: str, src, sweep, cache: Path, tokenizer, template, tok_key: str,
            built: list[str]) -> dict:
    """One domain's tokenized arrays from the cache, tokenized first if missing (its name then
    joins `built`)."""
    if src.fingerprint is None:
        src.rows()
    spec = {"v": CACHE_VERSION, "fingerprint": src.fingerprint, "format": src.format,
            "tokenizer": tok_key, "template": template.spec(),
            "max_length": sweep.train.max_length, "overlong": src.dom.overlong}
    key = digest(spec)
    arrays, meta = cache / f"tokens-{key}", cache / f"tokens-{key}.json"
    if not meta.is_file():
        convs, skipped = src.conversations()
        td, over_long = tokenize_conversations(convs, tokenizer, template,
                                               sweep.train.max_length, src.dom.overlong)
        skipped["over_long"] += len(over_long)
        info = {"key": key, "fingerprint": src.fingerprint, "format": src.format,
                "source": src.dom.source, "rows": len(src.rows()), "size": len(td),
                "tokens": int(td.offsets[-1]), "trainable_tokens": int(td.trainable.sum()),
                "truncated": int(td.truncated.sum()),
                "skipped": {r: skipped.get(r, 0) for r in SKIP_REASONS}}
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            td.save(Path(tmp) / "arrays")
            publish_dir(Path(tmp) / "arrays", arrays)
        write_atomic(meta, json.dumps(info, indent=1))  # last: marks the entry complete
        built.append(name)
    info = json.loads(meta.read_text())
    return {**info, "path": str(arrays), "upsample": src.dom.upsample}
