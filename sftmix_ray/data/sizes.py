"""How many samples a domain holds, where that is known before anything is prepared: a lab pool,
or the rows of a local file (an upper bound: malformed rows are skipped later). Hub datasets and
URLs are known only once prepared (`PreparedData.domains[d]["size"]`)."""

from __future__ import annotations

import json
from pathlib import Path

from ..config.presets import LAB_DEFAULT_POOL


def _rows_in_file(path: Path) -> int | None:
    if path.suffix == ".jsonl":
        with open(path, "rb") as f:
            return sum(1 for line in f if line.strip())
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
        return len(data) if isinstance(data, list) else None
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    return None


def sizes_before_preparing(sweep) -> dict[str, tuple[int, str]]:
    sizes = {}
    for name, dom in sweep.domains.items():
        if dom.is_lab:
            sizes[name] = (dom.pool or LAB_DEFAULT_POOL, "its lab pool")
            continue
        path = Path(dom.source)
        try:
            rows = _rows_in_file(path) if path.is_file() else None
        except (OSError, ValueError):
            rows = None  # unreadable: preparing the data says why, naming the field
        if rows is not None:
            sizes[name] = (rows, f"rows in {path.name}")
    return sizes


def sizes_after_preparing(prepared) -> dict[str, tuple[int, str]]:
    return {d: (info["size"], "usable samples after preparation")
            for d, info in prepared.domains.items()}
