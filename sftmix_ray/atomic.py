"""Publishing files so a reader sees all of an entry or none of it: caches are shared by trials
running at once (and by nodes through a shared filesystem), and a half-written entry must never be
mistaken for a complete one."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it into place. The file gets
    the mode a plain open() would give it (temporary files are private), so other users of a
    shared cache can read it; a failed write leaves nothing behind."""
    path = Path(path)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as f:
        tmp = f.name
    try:
        Path(tmp).write_text(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def publish_dir(src: str | Path, final: str | Path) -> bool:
    """Rename a finished directory into place. A concurrent publisher may have won the rename:
    then its entry is kept, `src` is removed, and False is returned."""
    try:
        os.rename(src, final)
        return True
    except OSError:
        if not Path(final).exists():
            raise
        shutil.rmtree(src, ignore_errors=True)
        return False
