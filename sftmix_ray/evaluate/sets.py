"""The evaluation sets of a sweep, read once in the driver and cached by what determines them (the
`evaluate:` settings and the lab's generator code), so every trial reads one small JSON file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_atomic
from ..config.schema import EvaluateConfig
from ..data import lab
from ..digests import digest, file_digest
from .benchmarks import load_eval_sets

CACHE_VERSION = 2


@dataclass(frozen=True)
class EvalSets:
    path: str

    @property
    def key(self) -> str:
        """Names the sets in every evaluation-cache key."""
        return Path(self.path).stem

    def load(self) -> dict[str, list[dict]]:
        return json.loads(Path(self.path).read_text())


def prepare_eval_sets(cfg: EvaluateConfig, cache_root: str | Path) -> EvalSets:
    cache = Path(cache_root).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    key = digest({"v": CACHE_VERSION, "evaluate": cfg.model_dump(),
                  "lab": file_digest(Path(lab.__file__))})
    path = cache / f"eval-{key}.json"
    if not path.is_file():
        write_atomic(path, json.dumps(load_eval_sets(cfg)))
    return EvalSets(str(path))
