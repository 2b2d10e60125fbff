"""Secrets never leave where they belong: the values of API keys and tokens in this process's
environment are cut out of any text bound for logs, MLflow tags and artifacts, records or error
messages (a server may echo the key it was sent in a 401 body; a traceback may quote it)."""

from __future__ import annotations

import functools
import json
import os
import re

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


def _char(c: str) -> str:
    """A pattern for one character of a secret as a server or serializer may echo it: itself,
    percent-encoded (URLs, form bodies), JSON-escaped (\\uXXXX, \\/), or "+" for a space."""
    forms = {re.escape(c), "".join(f"%{b:02x}" for b in c.encode()),
             re.escape(json.dumps(c)[1:-1]), re.escape(f"\\u{ord(c):04x}")}
    if c == "/":
        forms.add(re.escape("\\/"))
    if c == " ":
        forms.add(re.escape("+"))
    return "(?:" + "|".join(sorted(forms, key=len, reverse=True)) + ")"


@functools.lru_cache(maxsize=64)
def _pattern(secrets: tuple[str, ...]) -> re.Pattern:
    # longest first, so a secret that contains another is cut whole; case-blind, so hex digits in
    # either case match (and a secret echoed upper-cased is cut too)
    ordered = sorted({s for s in secrets if s}, key=len, reverse=True)
    return re.compile("|".join("".join(_char(c) for c in s) for s in ordered), re.IGNORECASE)


def redact(text: str, secrets: list[str] | None = None, names: tuple[str, ...] = ()) -> str:
    """`text` with every secret value replaced by [redacted], in whichever of its echoed forms
    (verbatim, percent-encoded, JSON-escaped, or a mix of them) it appears."""
    values = tuple(v for v in (secrets if secrets is not None else secret_values(names)) if v)
    if not text or not values:
        return text
    return _pattern(values).sub(MARK, text)


# user:password@ in a URL (postgresql://user:pw@host/db, http://user:pw@host): the password goes
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*):(?P<pw>[^@/\s]+)@")


def redact_urls(text: str) -> str:
    """`text` with the password of every URL in it replaced by [redacted] (a study storage or
    tracking URI written with its password, bound for MLflow or a log)."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}:{MARK}@", text) if text else text


def redact_tree(value):
    """A JSON-like value with `redact_urls` applied to every string in it."""
    if isinstance(value, str):
        return redact_urls(value)
    if isinstance(value, dict):
        return {k: redact_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_tree(v) for v in value]
    return value
