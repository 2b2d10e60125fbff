"""How many samples a domain holds, where a file tells it before anything is prepared: the rows
of a local file (an upper bound: malformed rows are skipped later). Lab pools are checked when the
sweep loads (`config.load`); hub datasets and URLs are known only once prepared
(`PreparedData.domains[d]["size"]`, `sizes_after_preparing`)."""

from __future__ import annotations

import json
from pathlib import Path


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


def local_file_sizes(sweep) -> dict[str, tuple[int, str]]:
    sizes = {}
    for name, dom in sweep.domains.items():
        path = Path(dom.source)
        if dom.is_lab or not path.is_file():
            continue
        try:
            rows = _rows_in_file(path)
        except (OSError, ValueError):
            rows = None  # unreadable: preparing the data says why, naming the field
        if rows is not None:
            sizes[name] = (rows, f"rows in {path.name}")
    return sizes


def sizes_after_preparing(prepared) -> dict[str, tuple[int, str]]:
    return {d: (info["size"], "usable samples after preparation")
            for d, info in prepared.domains.items()}
