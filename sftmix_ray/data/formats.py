"""Normalize each source format into one chat schema: a list of {"role", "content"} messages."""

from __future__ import annotations

FORMATS = ("gsm8k", "alpaca", "sharegpt", "messages")
_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "chatgpt": "assistant", "bard": "assistant", "bing": "assistant",
                   "system": "system"}


class MalformedRow(ValueError):
    """A row that cannot become a conversation; loaders skip and count these."""


def _text(row: dict, key: str) -> str:
    value = row.get(key)
    if not isinstance(value, str):
        raise MalformedRow(f"field {key!r} missing or not a string")
    return value


def to_messages(row: dict, fmt: str) -> list[dict]:
    if fmt == "gsm8k":
        msgs = [{"role": "user", "content": _text(row, "question")},
                {"role": "assistant", "content": _text(row, "answer")}]
    elif fmt == "alpaca":
        instruction, extra = _text(row, "instruction"), row.get("input") or ""
        if not isinstance(extra, str):
            raise MalformedRow("field 'input' is not a string")
        prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        msgs = [{"role": "user", "content": prompt},
                {"role": "assistant", "content": _text(row, "output")}]
    elif fmt == "sharegpt":
        turns = row.get("conversations")
        if not isinstance(turns, list) or not turns:
            raise MalformedRow("field 'conversations' missing or empty")
        msgs = []
        for turn in turns:
            if not isinstance(turn, dict) or turn.get("from") not in _SHAREGPT_ROLES:
                raise MalformedRow("a turn lacks a known 'from'")
            msgs.append({"role": _SHAREGPT_ROLES[turn["from"]], "content": _text(turn, "value")})
    elif fmt == "messages":
        msgs = row.get("messages")
        if not isinstance(msgs, list):
            raise MalformedRow("field 'messages' missing")
        for m in msgs:
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
                raise MalformedRow("a message lacks a known 'role'")
            _text(m, "content")
    else:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    if not any(m["role"] == "assistant" and m["content"].strip() for m in msgs):
        raise MalformedRow("no non-empty assistant response")
    return msgs
