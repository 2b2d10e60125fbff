"""The wire between a candidate's process and the process that runs its tests.

Calls cross as length-prefixed frames holding one value in a tagged binary encoding of plain
data: None, bool, int, float (nan and the infinities included), str, bytes, list, tuple, dict,
set, frozenset. Decoding builds those types only and runs none of the sender's code, so a value
cannot smuggle behaviour across (an object whose `__eq__` always says True has no encoding at
all). A reply that is oversized, malformed or not plain data breaks the call in the test process.

A call is ("call", args, kwargs); a reply is ("ok", value), ("raise", type name, message) or
("unsupported", why). A raised built-in is raised again in the test process, except that
StopIteration and StopAsyncIteration become RuntimeError (they would end a test's loop early).
Standard library only, no package imports, and nothing slow to import (no json, no re): the
sandbox launcher runs this file inside every sandboxed process, where `sftmix_ray` is not
importable.
"""

import builtins
import os
import struct
import sys

MAX_DEPTH = 100  # deeper values are refused, so neither side can exhaust the other's stack
_LEN = struct.Struct(">I")
_F64 = struct.Struct(">d")
_SEQUENCES = {b"l": list, b"t": tuple, b"e": set, b"z": frozenset}
_SEQUENCE_TAGS = [(kind, tag) for tag, kind in _SEQUENCES.items()]


class Unsupported(TypeError):
    """A value with no plain-data encoding."""


class Malformed(ValueError):
    """A frame or an encoded value that breaks the encoding's rules."""


class CandidateBroke(BaseException):
    """The candidate's process broke the protocol: it ended, sent a malformed or oversized reply,
    or returned something that is not plain data. A BaseException, so a test's `except
    Exception` cannot swallow it, and the test process remembers it and reports no pass after."""


class CandidateRaised(Exception):
    """The candidate raised an exception that is not one of Python's built-in ones."""


def encode(value) -> bytes:
    """`value` in the tagged encoding. Subclasses of the plain types cross as their base type,
    read through the base type's own methods (none of the subclass's code decides the bytes)."""
    out = bytearray()
    try:
        _encode(value, out, 0)
    except RecursionError:
        raise Unsupported("value nested too deeply") from None
    return bytes(out)


def _sized(out: bytearray, tag: bytes, raw: bytes) -> None:
    out += tag + _LEN.pack(len(raw)) + raw


def _encode(value, out: bytearray, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise Unsupported("value nested too deeply")
    if value is None:
        out += b"N"
    elif isinstance(value, bool):
        out += b"T" if value is True else b"F"
    elif isinstance(value, int):
        v = int.__index__(value)
        _sized(out, b"i", v.to_bytes((v.bit_length() + 8) // 8, "big", signed=True))
    elif isinstance(value, float):
        out += b"f" + _F64.pack(value)
    elif isinstance(value, str):
        _sized(out, b"s", str.encode(value, "utf-8", "surrogatepass"))
    elif isinstance(value, bytes):
        _sized(out, b"y", memoryview(value).tobytes())
    elif isinstance(value, dict):
        items = list(dict.items(value))
        out += b"d" + _LEN.pack(len(items))
        for k, v in items:
            _encode(k, out, depth + 1)
            _encode(v, out, depth + 1)
    else:
        tag = next((t for kind, t in _SEQUENCE_TAGS if isinstance(value, kind)), None)
        if tag is None:
            raise Unsupported(f"a {type(value).__name__} cannot cross as plain data")
        items = list(_SEQUENCES[tag].__iter__(value))
        out += tag + _LEN.pack(len(items))
        for v in items:
            _encode(v, out, depth + 1)


def decode(data: bytes):
    """The value `data` encodes; Malformed for anything else (a cut-off or trailing byte, an
    unknown tag, an unhashable set item or dict key, bad UTF-8, nesting past MAX_DEPTH)."""
    try:
        value, end = _decode(memoryview(data), 0, 0)
    except Malformed:
        raise
    except Exception as exc:  # any failure to build the value is a bad value
        raise Malformed(f"{type(exc).__name__}: {exc}") from None
    if end != len(data):
        raise Malformed("trailing bytes")
    return value


def _decode(view: memoryview, pos: int, depth: int):
    if depth > MAX_DEPTH or pos >= len(view):
        raise Malformed("nested too deeply or cut off")
    tag, pos = view[pos:pos + 1].tobytes(), pos + 1
    if tag in (b"N", b"T", b"F"):
        return {b"N": None, b"T": True, b"F": False}[tag], pos
    if tag == b"f":
        return _F64.unpack_from(view, pos)[0], pos + _F64.size
    (n,), pos = _LEN.unpack_from(view, pos), pos + _LEN.size
    if tag in (b"i", b"s", b"y"):
        raw = view[pos:pos + n]
        if len(raw) != n:
            raise Malformed("cut off")
        value = (int.from_bytes(raw, "big", signed=True) if tag == b"i"
                 else str(raw, "utf-8", "surrogatepass") if tag == b"s" else raw.tobytes())
        return value, pos + n
    if n > len(view) - pos:  # every item takes a byte at least: refuse absurd counts early
        raise Malformed("count past the end")
    if tag == b"d":
        result = {}
        for _ in range(n):
            key, pos = _decode(view, pos, depth + 1)
            result[key], pos = _decode(view, pos, depth + 1)
        return result, pos
    if tag not in _SEQUENCES:
        raise Malformed(f"unknown tag {tag!r}")
    items = []
    for _ in range(n):
        item, pos = _decode(view, pos, depth + 1)
        items.append(item)
    return _SEQUENCES[tag](items), pos


def send(fd: int, message) -> None:
    write_frame(fd, encode(message))


def write_frame(fd: int, data: bytes) -> None:
    view = memoryview(_LEN.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _read_exact(fd: int, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 16))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def receive(fd: int, cap: int):
    """The next message on `fd`, None at a clean end of stream; Malformed for a frame over `cap`
    bytes (refused before it is read), a cut-off frame or a bad value."""
    header = _read_exact(fd, _LEN.size)
    if not header:
        return None
    if len(header) < _LEN.size:
        raise Malformed("cut-off frame header")
    (size,) = _LEN.unpack(header)
    if size > cap:
        raise Malformed(f"reply of {size} bytes is over the {cap}-byte cap")
    data = _read_exact(fd, size)
    if len(data) < size:
        raise Malformed("cut-off frame")
    return decode(data)


def _outcome(reply):
    """What a reply says happened: ("ok", value) or ("raise", the exception it names, built
    here); Malformed for anything else."""
    if type(reply) is not tuple or not reply:
        raise Malformed("not a reply")
    if reply[0] == "ok" and len(reply) == 2:
        return reply
    if reply[0] == "unsupported" and len(reply) == 2:
        raise CandidateBroke(f"the candidate returned what is not plain data: {reply[1]}")
    if not (reply[0] == "raise" and len(reply) == 3 and type(reply[1]) is str
            and type(reply[2]) is str):
        raise Malformed("not a reply")
    kind = vars(builtins).get(reply[1])
    if isinstance(kind, type) and issubclass(kind, BaseException):
        if not issubclass(kind, Exception):  # SystemExit and the like: the call never returned
            raise CandidateBroke(f"the candidate raised {reply[1]}: {reply[2]}")
        if issubclass(kind, (StopIteration, StopAsyncIteration)):
            # Raised out of the proxy inside a test's map() or async iterator, it would end that
            # iteration early, and `all(map(candidate, xs))` would hold with calls unmade: a
            # RuntimeError instead, as PEP 479 does for generators.
            return "raise", RuntimeError(f"the candidate raised {reply[1]}: {reply[2]}")
        try:
            return "raise", kind(reply[2])
        except Exception:  # a built-in whose constructor wants more than a message
            pass
    return "raise", CandidateRaised(f"{reply[1]}: {reply[2]}")


def _call(request_fd: int, reply_fd: int, cap: int, args: tuple, kwargs: dict):
    try:
        message = encode(("call", tuple(args), dict(kwargs)))
    except Unsupported as exc:
        raise CandidateBroke(f"the test's arguments cannot cross: {exc}") from None
    try:
        write_frame(request_fd, message)
        reply = receive(reply_fd, cap)
        if reply is None:
            raise CandidateBroke("the candidate's process ended")
        return _outcome(reply)
    except OSError as exc:
        raise CandidateBroke(f"the candidate's process is gone: {exc}") from None
    except Malformed as exc:
        raise CandidateBroke(f"malformed reply: {exc}") from None


def proxy(name: str, request_fd: int, reply_fd: int, cap: int, broken: list):
    """A stand-in for the candidate in the test process: each call crosses the wire. The first
    protocol failure is kept in `broken`, and every later call fails with it too."""

    def candidate(*args, **kwargs):
        if broken:
            raise CandidateBroke(broken[0])
        try:
            kind, result = _call(request_fd, reply_fd, cap, args, kwargs)
        except CandidateBroke as exc:
            broken.append(str(exc))
            raise
        if kind == "raise":
            raise result
        return result

    candidate.__name__ = candidate.__qualname__ = name
    return candidate


def _text(exc: BaseException) -> str:
    try:
        return str(exc)[:1000]
    except Exception:  # a candidate's exception may fail even to print itself
        return "<unprintable>"


def serve(namespace: dict, name: str, request_fd: int, reply_fd: int) -> None:
    """In the candidate's process: answer calls until the test process closes the wire."""
    while True:
        message = receive(request_fd, 1 << 30)  # the test process is the trusted side
        if message is None:
            return
        _, args, kwargs = message
        try:
            value = namespace[name](*args, **kwargs)
        except BaseException as exc:  # SystemExit too: the candidate's failure, reported as such
            reply = encode(("raise", type(exc).__name__, _text(exc)))
        else:
            try:
                reply = encode(("ok", value))
            except Unsupported as exc:
                reply = encode(("unsupported", _text(exc)))
        sys.stdout.flush()
        write_frame(reply_fd, reply)
