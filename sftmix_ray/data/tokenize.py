"""Tokenize conversations once into flat arrays; labels are -100 outside assistant turns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IGNORE = -100


@dataclass
class TokenizedDomain:
    """Ragged token arrays: sample i spans ids[offsets[i]:offsets[i+1]]."""

    ids: np.ndarray  # int32
    labels: np.ndarray  # int32, IGNORE where no loss
    offsets: np.ndarray  # int64, len = n + 1
    truncated: int = 0

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def sample(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.ids[a:b], self.labels[a:b]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def save(self, path) -> None:
        np.savez(path, ids=self.ids, labels=self.labels, offsets=self.offsets,
                 truncated=np.array(self.truncated))

    @classmethod
    def load(cls, path) -> "TokenizedDomain":
        z = np.load(path)
        return cls(z["ids"], z["labels"], z["offsets"], int(z["truncated"]))


def tokenize_conversations(conversations: list[list[dict]], tokenizer, template,
                           max_length: int) -> TokenizedDomain:
    segs_per_conv = [template.segments(m) for m in conversations]
    flat_text = [text for segs in segs_per_conv for text, _ in segs]
    # One batched call for every segment: the fast tokenizer parallelizes it.
    encoded = tokenizer(flat_text, add_special_tokens=False)["input_ids"]
    ids_out, labels_out, offsets = [], [], [0]
    truncated, j = 0, 0
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    for segs in segs_per_conv:
        ids, labels = list(bos), [IGNORE] * len(bos)
        for _, trainable in segs:
            piece = encoded[j]
            j += 1
            ids.extend(piece)
            labels.extend(piece if trainable else [IGNORE] * len(piece))
        if len(ids) > max_length:
            truncated += 1
            ids, labels = ids[:max_length], labels[:max_length]
        ids_out.append(np.asarray(ids, dtype=np.int32))
        labels_out.append(np.asarray(labels, dtype=np.int32))
        offsets.append(offsets[-1] + len(ids))
    return TokenizedDomain(np.concatenate(ids_out) if ids_out else np.zeros(0, np.int32),
                           np.concatenate(labels_out) if labels_out else np.zeros(0, np.int32),
                           np.asarray(offsets, dtype=np.int64), truncated)
