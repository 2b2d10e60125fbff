"""Stage-prefix cache: a prefix of stages shared by several trials (DMT's stage 1 is the same for
every k) is trained once per sweep; later trials start from its checkpoint.

A prefix is keyed by everything that determines its weights: the model, tokenizer and template,
the training hyperparameters, the world size, the device type and compute dtype it trains on (a
CPU float32 prefix is not a GPU bf16 one), and the exact data of each stage (per-domain cache
keys, counts and index digests from the manifest). Because each stage is its own fine-tuning run
(fresh optimizer, its own schedule, seeded batch order and seeded global RNGs; see
loop.train_stage and rng.py), resuming at a stage boundary gives the same weights as training
through on the same device.

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

CACHE_VERSION = 3  # 2: per-stage RNG seeding; device and dtype in the key; 3: packing keeps
# batch_size samples per micro-batch (a packed GPU prefix of version 2 trained on other batches)
# TrainConfig fields that do not change the weights a stage produces.
_NOT_WEIGHTS = {"cpus_per_worker", "gpus_per_worker", "threads_per_worker", "prefix_cache",
                "save_model", "save_dtype", "expandable_segments", "collective_timeout_s",
                "gpu_memory_gib", "skip_memory_check"}


def lineage(model: ModelConfig, train: TrainConfig, prepared: PreparedData, manifest: dict, *,
            device: str = "cpu", dtype: str | None = None, base_model: str | None = None) -> dict:
    """What determines a trial's weights besides its stages' data: the model (and the lab base
    checkpoint it starts from, named by its content key), the training hyperparameters,
    tokenizer, template and seed, and where it trains (`device`: a device type such as 'cpu' or
    'cuda'; `dtype`: the compute dtype, None for plain float32)."""
    return {"v": CACHE_VERSION, "model": model.model_dump(mode="json"),
            "base_model": Path(base_model).name if base_model else None,
            "train": train.model_dump(mode="json", exclude=_NOT_WEIGHTS),
            "tokenizer": Path(prepared.tokenizer_dir).name, "template": prepared.template,
            "seed": manifest["seed"], "device": device, "dtype": dtype or "float32"}


def trial_weights_id(base: dict, manifest: dict, point: str) -> str:
    """An id for the weights a trial holds at `point` ('final', or 'epoch N' of its last stage):
    its lineage and its whole plan (the manifest hash). Training is seeded throughout, so the
    same id means the same training; the evaluation cache keys on it instead of hashing every
    parameter (11 s for 1.09 B parameters, before every evaluation)."""
    return digest({**base, "manifest": manifest["hash"], "point": point}, length=24)


def prefix_keys(model: ModelConfig, train: TrainConfig, prepared: PreparedData,
                manifest: dict, *, device: str = "cpu", dtype: str | None = None,
                base_model: str | None = None) -> list[str]:
    """One key per proper prefix (stages[:1], stages[:2], ... without the last stage)."""
    base = lineage(model, train, prepared, manifest, device=device, dtype=dtype,
                   base_model=base_model)
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

    def record(self, key: str) -> dict:
        """The stage's training record alone (its weights are read only if a later stage
        trains from them)."""
        return json.loads((self._dir(key) / "record.json").read_text())

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
