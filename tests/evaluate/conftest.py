"""Fixtures the sandbox tests share."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from sftmix_ray.evaluate import sandbox


@pytest.fixture
def visible_dir():
    """A fresh directory the sandbox can see: outside the /tmp, /var/tmp, /dev/shm and /root
    that its mount namespace lays private tmpfs over."""
    for base in ("/run", "/var/lib", "/srv", "/opt", "/mnt"):
        if os.path.isdir(base) and not os.path.islink(base) and os.access(base, os.W_OK):
            path = Path(tempfile.mkdtemp(prefix="sftmix-sbx-test-", dir=base))
            break
    else:
        pytest.skip("no writable directory outside the sandbox's private mounts")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def uids(monkeypatch):
    """The fresh uids the sandbox hands out during the test."""
    seen = []
    fresh = sandbox._fresh_uid

    def recording():
        seen.append(fresh())
        return seen[-1]

    monkeypatch.setattr(sandbox, "_fresh_uid", recording)
    return seen
