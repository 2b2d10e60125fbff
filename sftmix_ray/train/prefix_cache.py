"""Stage-prefix cache: a prefix of stages shared by several trials (DMT's stage 1 is the same for
every k) is trained once per sweep; later trials start from its checkpoint.

A prefix is keyed by everything that determines its weights: the model, tokenizer and template,
the training hyperparameters, the world size, and the exact data of each stage (per-domain cache
keys, counts and index digests from the manifest). Because each stage is its own fine-tuning run
(fresh optimizer, its own schedule and seeded batch order; see loop.train_stage), resuming at a
stage boundary gives the same weights as training through.

Races: the trial that trains a prefix holds an exclusive `flock` on `<key>.lock` while it does;
another trial that needs the same prefix waits on the lock and then loads the checkpoint, so no
prefix is trained twice and none is read half-written (a checkpoint is published by atomic rename).
If the holder dies, the OS drops its lock and the waiter finds no checkpoint, so it trains the
prefix itself.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from pathlib import Path

from ..atomic import publish_dir
from ..config.schema import ModelConfig, TrainConfig
from ..data.prepare import PreparedData
from ..digests import digest

CACHE_VERSION = 1
# TrainConfig fields that do not change the weights a stage produces.
_NOT_WEIGHTS = {"cpus_per_worker", "gpus_per_worker", "threads_per_worker", "prefix_cache",
                "save_model"}


def prefix_keys(model: ModelConfig, train: TrainConfig, prepared: PreparedData,
                manifest: dict, base_model: str | None = None) -> list[str]:
    """One key per proper prefix (stages[:1], stages[:2], ... without the last stage).
    `base_model` is the lab base checkpoint, named by its content key."""
    base = {"v": CACHE_VERSION, "model": model.model_dump(mode="json"),
            "base_model": Path(base_model).name if base_model else None,
            "train": train.model_dump(mode="json", exclude=_NOT_WEIGHTS),
            "tokenizer": Path(prepared.tokenizer_dir).name, "template": prepared.template,
            "seed": manifest["seed"]}
    keys, stages = [], []
    for stage in manifest["stages"][:-1]:
        stages.append({"epochs": stage.get("epochs"), "steps": stage.get("steps"),
                       "data": {d: [manifest["domains"][d]["key"], e["samples"], e["selection"]]
                                for d, e in sorted(stage["domains"].items())}})
        keys.append(digest({**base, "stages": stages}, length=24))
    return keys


class PrefixCache:
    def __init__(self, root: str | Path, poll_s: float = 0.5):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.poll_s = poll_s

    def _dir(self, key: str) -> Path:
        return self.root / key

    def complete(self, key: str) -> bool:
        return (self._dir(key) / "record.json").is_file()

    def acquire(self, key: str) -> _Lock:
        """Block until this process holds the prefix's lock."""
        lock = _Lock(self.root / f"{key}.lock")
        waited = lock.acquire(self.poll_s)
        lock.waited_s = waited
        return lock

    def load(self, key: str) -> tuple[dict, dict]:
        import torch

        d = self._dir(key)
        record = json.loads((d / "record.json").read_text())
        return torch.load(d / "state.pt", map_location="cpu", weights_only=True), record

    def publish(self, key: str, state: dict, record: dict) -> None:
        import torch

        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=self.root))
        torch.save(state, tmp / "state.pt")
        (tmp / "record.json").write_text(json.dumps(record))
        publish_dir(tmp, self._dir(key))  # already there only if a lock was lost: keep the first


class _Lock:
    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None
        self.waited_s = 0.0

    def acquire(self, poll_s: float) -> float:
        t0 = time.monotonic()
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return time.monotonic() - t0
            except BlockingIOError:
                time.sleep(poll_s)

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
