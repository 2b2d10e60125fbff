"""Normalize each source format into one chat schema: a list of {"role", "content"} messages.

A row that cannot become a conversation raises `MalformedRow` with a reason from `SKIP_REASONS`;
loaders skip it and count it by reason, so bad rows show up in the manifest instead of crashing a
sweep hours in.
"""

from __future__ import annotations

from ..config.presets import FORMATS  # noqa: F401  (the names; the conversions are here)

SKIP_REASONS = ("missing_field", "wrong_type", "empty_response", "unknown_role", "over_long")
_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "chatgpt": "assistant", "bard": "assistant", "bing": "assistant",
                   "system": "system"}
_ROLES = ("system", "user", "assistant")


class MalformedRow(ValueError):
    def __init__(self, reason: str, detail: str):
        assert reason in SKIP_REASONS, reason
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


def _text(row: dict, key: str) -> str:
    if not isinstance(row, dict) or key not in row or row[key] is None:
        raise MalformedRow("missing_field", f"field {key!r} is missing")
    value = row[key]
    if not isinstance(value, str):
        raise MalformedRow("wrong_type", f"field {key!r} is {type(value).__name__}, not a string")
    return value


def _gsm8k(row: dict) -> list[dict]:
    # GSM8K rows are question/answer; GSM8K-RFT (the study's math data) rows are query/response.
    q, a = ("query", "response") if "query" in row and "question" not in row else \
        ("question", "answer")
    return [{"role": "user", "content": _text(row, q)},
            {"role": "assistant", "content": _text(row, a)}]


def _alpaca(row: dict) -> list[dict]:
    instruction, extra = _text(row, "instruction"), row.get("input") or ""
    if not isinstance(extra, str):
        raise MalformedRow("wrong_type", "field 'input' is not a string")
    prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    return [{"role": "user", "content": prompt},
            {"role": "assistant", "content": _text(row, "output")}]


def _sharegpt(row: dict) -> list[dict]:
    turns = row.get("conversations")
    if turns is None:
        raise MalformedRow("missing_field", "field 'conversations' is missing")
    if not isinstance(turns, list):
        raise MalformedRow("wrong_type", "field 'conversations' is not a list")
    msgs = []
    for turn in turns:
        if not isinstance(turn, dict):
            raise MalformedRow("wrong_type", "a turn is not a mapping")
        if turn.get("from") not in _SHAREGPT_ROLES:
            raise MalformedRow("unknown_role", f"turn 'from' is {turn.get('from')!r}")
        msgs.append({"role": _SHAREGPT_ROLES[turn["from"]], "content": _text(turn, "value")})
    return msgs


def _messages(row: dict) -> list[dict]:
    msgs = row.get("messages")
    if msgs is None:
        raise MalformedRow("missing_field", "field 'messages' is missing")
    if not isinstance(msgs, list):
        raise MalformedRow("wrong_type", "field 'messages' is not a list")
    out = []
    for m in msgs:
        if not isinstance(m, dict):
            raise MalformedRow("wrong_type", "a message is not a mapping")
        if m.get("role") not in _ROLES:
            raise MalformedRow("unknown_role", f"message role is {m.get('role')!r}")
        out.append({"role": m["role"], "content": _text(m, "content")})
    return out


_PARSERS = {"gsm8k": _gsm8k, "alpaca": _alpaca, "sharegpt": _sharegpt, "messages": _messages}


def to_messages(row: dict, fmt: str) -> list[dict]:
    if fmt not in _PARSERS:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    if not isinstance(row, dict):
        raise MalformedRow("wrong_type", f"row is {type(row).__name__}, not a mapping")
    msgs = _PARSERS[fmt](row)
    if not any(m["role"] == "assistant" and m["content"].strip() for m in msgs):
        raise MalformedRow("empty_response", "no non-empty assistant turn")
    return msgs
