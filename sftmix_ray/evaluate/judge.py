"""A client for an MT-Bench judge behind any OpenAI-compatible `/chat/completions` endpoint (a
vLLM or TGI server, or a hosted API), with retries and backoff, and the `[[rating]]` parser.

Standard library only: the judge is one POST per answer, and an SDK would add a dependency for it.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request

_RATING = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_RATING_FALLBACK = re.compile(r"\[(\d+\.?\d*)\]")  # FastChat's second try


class JudgeError(RuntimeError):
    pass


def parse_rating(text: str) -> float | None:
    """The judge's score from "Rating: [[8]]" (or FastChat's fallback "[8]"); None if absent."""
    for pattern in (_RATING, _RATING_FALLBACK):
        m = pattern.search(text or "")
        if m:
            return float(m.group(1))
    return None


class JudgeClient:
    def __init__(self, base_url: str, model: str, api_key: str | None = None,
                 timeout_s: float = 60.0, max_retries: int = 4, backoff_s: float = 1.0,
                 max_tokens: int = 2048):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.api_key = model, api_key
        self.timeout_s, self.max_retries, self.backoff_s = timeout_s, max_retries, backoff_s
        self.max_tokens = max_tokens

    def complete(self, system: str, user: str) -> str:
        body = json.dumps({"model": self.model, "temperature": 0, "max_tokens": self.max_tokens,
                           "messages": [{"role": "system", "content": system},
                                        {"role": "user", "content": user}]}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
                    reply = json.loads(resp.read())
                return reply["choices"][0]["message"]["content"]
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}: {exc.read()[:200]!r}"
                if exc.code != 429 and exc.code < 500:
                    raise JudgeError(f"judge at {self.url} refused the request: {last}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            except (KeyError, IndexError, ValueError) as exc:
                last = f"malformed reply ({type(exc).__name__}: {exc})"
        raise JudgeError(f"judge at {self.url} failed after {self.max_retries + 1} attempts: "
                         f"{last}")
