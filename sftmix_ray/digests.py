"""Content digests: what determines a result is hashed, and the hash keys caches and MLflow tags."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def digest(obj, length: int = 16) -> str:
    """SHA-256 of `obj` as canonical JSON (sorted keys; anything else by its str)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def bytes_digest(data: bytes, length: int = 16) -> str:
    """SHA-256 of raw bytes (index arrays, template sources)."""
    return hashlib.sha256(data).hexdigest()[:length]


def file_digest(path: str | Path, length: int = 16) -> str:
    """SHA-256 of a file's bytes, read in blocks so a large file costs no memory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:length]
