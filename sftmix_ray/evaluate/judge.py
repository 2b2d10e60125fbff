"""A client for an MT-Bench judge behind any OpenAI-compatible `/chat/completions` endpoint (a
vLLM or TGI server, or a hosted API), with retries and backoff, and the `[[rating]]` parser.

Time: `timeout_s` bounds one request whole (connect, send, status, headers and the full body),
and a grade's tries, backoff and `Retry-After` waits together stay within `deadline_s` (by
default (max_retries + 1) × timeout_s), so no server, however slow, holds a grade longer.
Secrets: the key goes only to the configured endpoint (redirects are not followed), and every
message this client produces has the key and the environment's secrets cut out.

Standard library only: the judge is one POST per answer, and an SDK would add a dependency for it.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import math
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone

from ..redact import MIN_SECRET_LENGTH, redact, secret_values

log = logging.getLogger(__name__)

_RATING = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_RATING_FALLBACK = re.compile(r"\[(\d+\.?\d*)\]")  # FastChat's second try
OPENAI_HOST = "api.openai.com"
RETRY_AFTER_CAP_S = 60.0  # a server asking for an hour would otherwise stall the whole evaluation
RETRIED = {408, 429}  # the 4xx that say "later", not "never"; every 5xx is retried too
HONOURS_RETRY_AFTER = {429, 503}
EXCERPT_CHARS = 200
MAX_REPLY_BYTES = 8 << 20  # a grade's reply is kilobytes; a server streaming more is broken


class JudgeError(RuntimeError):
    pass


def parse_rating(text: str) -> float | None:
    """The judge's score from "Rating: [[8]]" (or FastChat's fallback "[8]"); None if absent."""
    for pattern in (_RATING, _RATING_FALLBACK):
        m = pattern.search(text or "")
        if m:
            return float(m.group(1))
    return None


def api_key_for(base_url: str, api_key_env: str, environ=None) -> str | None:
    """The key to send to `base_url`: its own `api_key_env`; OPENAI_API_KEY only when the
    endpoint is OpenAI's itself, over https (a custom judge must never receive the OpenAI key)."""
    environ = os.environ if environ is None else environ
    own = environ.get(api_key_env)
    if own:
        return own
    try:
        url = urllib.parse.urlsplit(base_url)
        openai = url.scheme == "https" and url.hostname == OPENAI_HOST and \
            url.port in (None, 443) and not url.username
    except ValueError:  # a port that is not a number: not OpenAI's endpoint
        openai = False
    return (environ.get("OPENAI_API_KEY") or None) if openai else None


def retry_after_s(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delay-seconds or an HTTP-date; None if absent
    or unreadable (then the usual backoff applies)."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
        # 'nan' and 'inf' parse as floats; a server's nonsense falls back to the usual backoff
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max((when - datetime.now(timezone.utc)).total_seconds(), 0.0)


class _Deadline:
    """One request's time limit. A socket timeout bounds each read alone, so a server dripping a
    byte at a time would outlast it; at the deadline a timer shuts the request's socket down,
    which wakes any read blocked on it, and `passed` tells the caller why the read ended."""

    def __init__(self, seconds: float):
        self.at, self.passed = time.monotonic() + seconds, False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def watch(self, sock: socket.socket) -> None:
        # a duplicate of the descriptor: TLS wrapping detaches the original socket object, and
        # shutting down the duplicate shuts down the one connection both name
        with self._lock:
            self._socks.append(sock.dup())
            if self.passed:
                _shut(self._socks[-1])

    def _cut(self) -> None:
        with self._lock:
            self.passed = True
            for sock in self._socks:
                _shut(sock)

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()
        with self._lock:
            for sock in self._socks:
                sock.close()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: nothing left to wake


class _WatchedHTTP(http.client.HTTPConnection):
    deadline: _Deadline

    def connect(self):
        left = self.deadline.remaining()
        if left <= 0:
            raise TimeoutError("the deadline passed before connecting")
        self.timeout = left  # connecting is one operation: the socket timeout bounds it
        super().connect()
        self.deadline.watch(self.sock)


class _WatchedHTTPS(http.client.HTTPSConnection, _WatchedHTTP):
    """HTTPSConnection.connect calls _WatchedHTTP.connect for the TCP part, so the deadline
    watches the socket before the TLS handshake too."""


class _Watch:
    """Makes urllib's handlers open connections the deadline watches; proxies and TLS settings
    still come from urllib."""

    def __init__(self, deadline: _Deadline):
        super().__init__()
        self.deadline = deadline

    def do_open(self, http_class, req, **kwargs):
        cls = _WatchedHTTPS if issubclass(http_class, http.client.HTTPSConnection) \
            else _WatchedHTTP

        def connection(host, **kw):
            conn = cls(host, **kw)
            conn.deadline = self.deadline
            return conn

        return super().do_open(connection, req, **kwargs)


class _PlainHandler(_Watch, urllib.request.HTTPHandler):
    pass


class _SecureHandler(_Watch, urllib.request.HTTPSHandler):
    pass


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A judge API never redirects; following one would carry the request (and, for a header
    urllib copies, the key) to a host nobody configured."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises the 3xx as an HTTPError


class _DeadlinePassed(TimeoutError):
    pass


class JudgeClient:
    def __init__(self, base_url: str, model: str, api_key: str | None = None,
                 timeout_s: float = 60.0, max_retries: int = 4, backoff_s: float = 1.0,
                 max_tokens: int = 2048, deadline_s: float | None = None,
                 retry_after_cap_s: float = RETRY_AFTER_CAP_S,
                 secret_env: tuple[str, ...] = ("SFTMIX_JUDGE_API_KEY", "OPENAI_API_KEY")):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.api_key = model, api_key
        self.timeout_s, self.max_retries, self.backoff_s = timeout_s, max_retries, backoff_s
        self.max_tokens, self.retry_after_cap_s = max_tokens, retry_after_cap_s
        self.deadline_s = deadline_s if deadline_s is not None else \
            timeout_s * (max_retries + 1)
        # the key in use and the environment's secrets as redact.py finds them, plus the configured
        # variable even when its name does not look secret; a value shorter than redact's minimum
        # is a placeholder (vLLM's "EMPTY"), and cutting it would cut every ordinary "empty"
        self._secrets = sorted({v for v in [api_key, *secret_values(secret_env)]
                                if v and len(v) >= MIN_SECRET_LENGTH}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def complete(self, system: str, user: str) -> str:
        """The judge's reply, or JudgeError (redacted) once a 4xx refuses the request, the tries
        are spent, or the grade's deadline would pass."""
        body = json.dumps({"model": self.model, "temperature": 0, "max_tokens": self.max_tokens,
                           "messages": [{"role": "system", "content": system},
                                        {"role": "user", "content": user}]}).encode()
        end = time.monotonic() + self.deadline_s
        attempts, last = 0, "the grade's deadline passed before the first try"
        while attempts <= self.max_retries and (left := end - time.monotonic()) > 0:
            attempts += 1
            content, last, wait = self._attempt(body, min(self.timeout_s, left))
            if content is not None:
                return content
            if attempts > self.max_retries:
                break
            wait = self.backoff_s * 2 ** (attempts - 1) if wait is None else wait
            if time.monotonic() + wait >= end:
                last += (f"; the next try, {wait:.3g}s away, would pass the grade's deadline "
                         f"({self.deadline_s:.3g}s)")
                break
            log.info("judge try %d failed, again in %.3gs: %s", attempts, wait, self.redact(last))
            time.sleep(wait)
        raise self._error(f"judge at {self.url} failed after {attempts} "
                          f"attempt{'s' if attempts != 1 else ''}: {last}")

    def _attempt(self, body: bytes, seconds: float) -> tuple[str | None, str, float | None]:
        """One try: (reply, "", None), or (None, why it failed, the wait the server asked for);
        raises JudgeError for a refusal that retrying cannot change."""
        try:
            status, headers, data = self._post(body, seconds)
        except _DeadlinePassed:
            return None, f"no complete reply within {seconds:.3g}s (the request's deadline)", None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            # URLError is an OSError; http.client lets a ValueError out of a bad chunk size
            return None, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}", None
        if 200 <= status < 300:
            try:
                return _content(data), "", None
            except ValueError as exc:
                return None, f"malformed reply ({exc}): {self._excerpt(data)}", None
        why = f"HTTP {status}: {self._excerpt(data)}"
        if 300 <= status < 400:
            why += f" (redirect to {headers.get('Location')!r} not followed)"
        if status < 500 and status not in RETRIED:
            raise self._error(f"judge at {self.url} refused the request: {why}")
        wait = retry_after_s(headers.get("Retry-After")) if status in HONOURS_RETRY_AFTER \
            else None
        return None, why, None if wait is None else min(wait, self.retry_after_cap_s)

    def _post(self, body: bytes, seconds: float):
        """(status, headers, body) of one POST, an error status included, all within
        `seconds`; _DeadlinePassed if they did not all arrive in time."""
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        if self.api_key:
            request.add_unredirected_header("Authorization", f"Bearer {self.api_key}")
        with _Deadline(seconds) as deadline:
            opener = urllib.request.build_opener(_PlainHandler(deadline),
                                                 _SecureHandler(deadline), _NoRedirect)
            try:
                try:
                    with opener.open(request, timeout=seconds) as resp:
                        status, headers = resp.status, resp.headers
                        data = resp.read(MAX_REPLY_BYTES + 1)
                except urllib.error.HTTPError as exc:
                    with exc:
                        # read as far as a reply, so redaction sees every key echoed before the
                        # excerpt's cut, not half of one at the end of a shorter read
                        status, headers = exc.code, exc.headers
                        data = exc.read(MAX_REPLY_BYTES + 1)
            except (OSError, http.client.HTTPException, ValueError):
                # past the deadline, a socket timeout may beat the timer's thread to it: the same
                # cause either way
                if deadline.passed or deadline.remaining() <= 0:
                    raise _DeadlinePassed() from None
                raise
            if deadline.passed:  # a body read to "end of stream" ends quietly when cut
                raise _DeadlinePassed()
        return status, headers, data

    def _excerpt(self, data: bytes) -> str:
        # redacted before it is cut short, so a key straddling the cut cannot leave half of
        # itself behind
        return repr(self.redact(data.decode("utf-8", "replace"))[:EXCERPT_CHARS])

    def _error(self, message: str) -> JudgeError:
        return JudgeError(self.redact(message))


def _content(data: bytes) -> str:
    if len(data) > MAX_REPLY_BYTES:
        raise ValueError(f"more than {MAX_REPLY_BYTES} bytes")
    try:
        reply = json.loads(data)
    except ValueError:
        raise ValueError("not JSON") from None
    try:
        content = reply["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ValueError("no choices[0].message.content") from None
    if not isinstance(content, str):
        raise ValueError(f"content is {type(content).__name__}, not text")
    return content
