"""Where a sweep keeps things: its Tune experiment and Train checkpoints under `storage` (a path,
NFS included, or a URI such as s3://bucket/prefix that pyarrow opens), and its caches and
driver-side state on a filesystem path.

Caches (tokenized domains, stage-prefix checkpoints, evaluation scores) are memory-mapped and
locked with flock, so they need a real filesystem: with a path `storage` they live in
`<storage>/cache`; with a URI the sweep names `cache_dir`, which every node must see. The driver's
state (the sweep's state file and the Optuna journal) lives beside the Tune experiment for a path,
and under `<cache_dir>/sweeps/<name>/` for a URI.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_uri(location: str) -> bool:
    return bool(_URI.match(location)) and not location.startswith("file://")


def storage_root(storage: str) -> str:
    """`storage` as Tune's storage_path takes it: a URI as given, a path made absolute."""
    if is_uri(storage):
        return storage.rstrip("/")
    return str(Path(storage.removeprefix("file://")).resolve())


def experiment_location(storage: str, name: str) -> str:
    """The Tune experiment's home, as Tune and Train take it (a path or a URI)."""
    return f"{storage_root(storage)}/{name}"


def cache_root(storage: str, cache_dir: str | None) -> Path:
    if cache_dir:
        return Path(cache_dir).expanduser().resolve()
    if is_uri(storage):
        raise ValueError(f"storage {storage!r} is a URI: set cache_dir to a path every node "
                         f"sees (e.g. NFS) for the sweep's caches")
    return Path(storage.removeprefix("file://")).resolve() / "cache"


def state_dir(storage: str, cache_dir: str | None, name: str) -> Path:
    """Driver-side files that need a filesystem (the state file, the Optuna journal)."""
    if is_uri(storage):
        return cache_root(storage, cache_dir) / "sweeps" / name
    return Path(experiment_location(storage, name))


def uri_exists(location: str) -> bool:
    import pyarrow.fs as pafs

    fs, path = pafs.FileSystem.from_uri(location)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def fetch_files(location: str, pattern: str = "*.json") -> Path | None:
    """A local directory holding the files of `location` (a path or a URI) that match `pattern`:
    the path itself, or a temporary copy of a URI's files (the caller removes it). None when
    nothing is there."""
    if not is_uri(location):
        return Path(location) if Path(location).is_dir() else None
    import fnmatch

    import pyarrow.fs as pafs

    fs, path = pafs.FileSystem.from_uri(location)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return None
    out = Path(tempfile.mkdtemp(prefix="sftmix-fetch-"))
    for info in fs.get_file_info(pafs.FileSelector(path, recursive=False)):
        if info.type == pafs.FileType.File and fnmatch.fnmatch(info.base_name, pattern):
            with fs.open_input_stream(info.path) as src:
                (out / info.base_name).write_bytes(src.read())
    return out
