"""Tokenize conversations once into flat arrays; labels are -100 outside assistant turns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

IGNORE = -100


@dataclass
class TokenizedDomain:
    """Ragged token arrays: sample i spans ids[offsets[i]:offsets[i+1]]. `trainable` (label tokens
    per sample) and `truncated` (bool per sample) let a trial write its manifest without reading
    the tokens themselves."""

    ids: np.ndarray  # int32
    labels: np.ndarray  # int32, IGNORE where no loss
    offsets: np.ndarray  # int64, len = n + 1
    truncated: np.ndarray  # bool, len = n
    trainable: np.ndarray  # int32, len = n

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def sample(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.ids[a:b], self.labels[a:b]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def save(self, directory) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name in _ARRAYS:
            np.save(directory / f"{name}.npy", getattr(self, name))

    @classmethod
    def load(cls, directory) -> TokenizedDomain:
        """Memory-mapped: a trial reads only the pages of the samples its mixture selects, and
        trials on one node share them through the page cache."""
        # np.asarray drops the memmap subclass, whose per-slice bookkeeping costs more than the
        # slice itself when a mixture takes thousands of samples.
        return cls(*(np.asarray(np.load(Path(directory) / f"{name}.npy", mmap_mode="r"))
                     for name in _ARRAYS))


_ARRAYS = ("ids", "labels", "offsets", "truncated", "trainable")


def load_index(directory) -> dict[str, np.ndarray]:
    """Per-sample lengths, label-token counts and truncation flags, without the token arrays."""
    d = Path(directory)
    return {"lengths": np.diff(np.load(d / "offsets.npy")),
            "trainable": np.load(d / "trainable.npy", mmap_mode="r"),
            "truncated": np.load(d / "truncated.npy", mmap_mode="r")}


def tokenize_conversations(conversations: list[list[dict]], tokenizer, template, max_length: int,
                           overlong: str = "truncate") -> tuple[TokenizedDomain, list[int]]:
    """Tokens for every conversation that keeps at least one label token; also the indices of the
    conversations skipped as over-long (all their answer tokens cut, or any cut when
    overlong='skip')."""
    segs_per_conv = [template.segments(m) for m in conversations]
    flat_text = [text for segs in segs_per_conv for text, _ in segs]
    # One batched call for every segment: the fast tokenizer parallelizes it.
    encoded = tokenizer(flat_text, add_special_tokens=False)["input_ids"] if flat_text else []
    bos = [tokenizer.bos_token_id] if template.prepend_bos and tokenizer.bos_token_id is not None \
        else []
    ids_out, labels_out, offsets, truncated, trainable, skipped = [], [], [0], [], [], []
    j = 0
    for c, segs in enumerate(segs_per_conv):
        ids, labels = list(bos), [IGNORE] * len(bos)
        for _, is_trainable in segs:
            piece = encoded[j]
            j += 1
            ids.extend(piece)
            labels.extend(piece if is_trainable else [IGNORE] * len(piece))
        cut = len(ids) > max_length
        if cut:
            ids, labels = ids[:max_length], labels[:max_length]
        n_train = sum(t != IGNORE for t in labels)
        if n_train == 0 or (cut and overlong == "skip"):
            skipped.append(c)
            continue
        ids_out.append(np.asarray(ids, dtype=np.int32))
        labels_out.append(np.asarray(labels, dtype=np.int32))
        offsets.append(offsets[-1] + len(ids))
        truncated.append(cut)
        trainable.append(n_train)
    empty = np.zeros(0, np.int32)
    return TokenizedDomain(np.concatenate(ids_out) if ids_out else empty,
                           np.concatenate(labels_out) if labels_out else empty,
                           np.asarray(offsets, dtype=np.int64), np.asarray(truncated, dtype=bool),
                           np.asarray(trainable, dtype=np.int32)), skipped
