"""Secrets never leave where they belong: the values of API keys and tokens in this process's
environment are cut out of any text bound for logs, MLflow tags and artifacts, records or error
messages (a server may echo the key it was sent in a 401 body; a traceback may quote it)."""

from __future__ import annotations

import os

# An environment variable whose name contains one of these holds a secret.
SECRET_NAME_PARTS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")
MIN_SECRET_LENGTH = 6  # shorter values would redact ordinary words and digits
MARK = "[redacted]"


def secret_values(names: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The values of the environment's secret-looking variables and of `names`, longest first
    (so a key that contains another is cut whole)."""
    found = {v for k, v in os.environ.items()
             if (k in names or any(p in k.upper() for p in SECRET_NAME_PARTS))
             and len(v) >= MIN_SECRET_LENGTH}
    return sorted(found, key=len, reverse=True)


def redact(text: str, secrets: list[str] | None = None, names: tuple[str, ...] = ()) -> str:
    """`text` with every secret value replaced by [redacted]."""
    if not text:
        return text
    for value in secrets if secrets is not None else secret_values(names):
        if value:
            text = text.replace(value, MARK)
    return text
