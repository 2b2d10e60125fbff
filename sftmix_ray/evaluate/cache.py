"""Evaluation cache: scores and per-sample records keyed by a digest of the weights and everything
else that determines them (benchmark settings, evaluation sets, template). Identical weights
(a repeated seed, a resumed sweep, `sftmix eval` run twice) are never scored twice."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..atomic import write_atomic
from ..digests import digest


def weights_digest(model) -> str:
    """SHA-256 over every parameter and buffer, in name order. Cheap next to generation: a tiny
    model takes milliseconds, a 7B model a few seconds."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode() + str(tensor.dtype).encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(dtype=_byte_dtype()).numpy()
                 .tobytes())
    return h.hexdigest()[:24]


def _byte_dtype():
    import torch

    return torch.uint8


def eval_key(weights: str, settings: dict) -> str:
    return digest({"weights": weights, **settings}, length=24)


class EvalCache:
    def __init__(self, directory: str | Path | None):
        self.dir = Path(directory) if directory else None

    def get(self, key: str) -> tuple[dict, dict] | None:
        if self.dir is None or not (self.dir / f"{key}.json").is_file():
            return None
        entry = json.loads((self.dir / f"{key}.json").read_text())
        return entry["scores"], entry["records"]

    def put(self, key: str, scores: dict, records: dict) -> None:
        if self.dir is None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.dir / f"{key}.json", json.dumps({"scores": scores, "records": records}))
