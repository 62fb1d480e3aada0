"""Wire encoding: Connect envelopes, proto3 JSON helpers, result and child encoding."""

import base64
import binascii
import json
import struct
from typing import Any, Dict, List, Optional, Tuple

# Connect envelope flags
FLAG_COMPRESSED = 0x01
FLAG_END_STREAM = 0x02

_HEADER = struct.Struct(">BI")
HEADER_SIZE = _HEADER.size  # 5

OCTET_STREAM = "application/octet-stream"
TEXT_UTF8 = "text/plain; charset=utf-8"
JSON_TYPE = "application/json"


def encode_envelope(message: Any, flags: int = 0) -> bytes:
    """One envelope: a flags byte, a 4-byte big-endian length, then the message as JSON."""
    data = dumps(message)
    return _HEADER.pack(flags, len(data)) + data


def decode_header(header: bytes) -> Tuple[int, int]:
    """(flags, length) of an envelope's 5-byte header."""
    return _HEADER.unpack(header)


def decode_envelopes(data: bytes) -> List[Tuple[int, Any]]:
    """Every envelope of a complete body, as (flags, decoded JSON)."""
    out = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < HEADER_SIZE:
            raise ValueError("truncated envelope header")
        flags, length = _HEADER.unpack_from(data, offset)
        offset += HEADER_SIZE
        if len(data) - offset < length:
            raise ValueError("truncated envelope: %d of %d bytes" % (len(data) - offset, length))
        out.append((flags, json.loads(data[offset : offset + length].decode("utf-8")) if length else {}))
        offset += length
    return out


def dumps(message: Any) -> bytes:
    """Compact JSON, UTF-8 (as JSON.stringify writes it)."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: Optional[str]) -> bytes:
    """proto3 JSON bytes: standard base64 with padding (URL-safe and unpadded accepted too)."""
    if not text:
        return b""
    if "-" in text or "_" in text:
        text = text.replace("-", "+").replace("_", "/")
    missing = -len(text) % 4
    if missing:
        text += "=" * missing
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError) as error:
        raise ValueError("invalid base64 in a bytes field: %s" % error) from None


def as_int(value: Any) -> int:
    """A proto3 JSON integer (64-bit ones arrive as strings; absent is 0)."""
    if value is None or value == "":
        return 0
    return int(value)


class Output:
    """A result (or a child's input) with a content type of your choosing:

        return Output(png_bytes, "image/png")
        return Output('{"a":1}', "application/json")   # str is sent as UTF-8
    """

    __slots__ = ("data", "content_type")

    def __init__(self, data: Any, content_type: str = "") -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        elif isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        elif not isinstance(data, bytes):
            raise TypeError("Output takes bytes or str, got %s" % type(data).__name__)
        self.data = data
        self.content_type = content_type or ""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Output) and (self.data, self.content_type) == (other.data, other.content_type)

    def __repr__(self) -> str:
        return "Output(%d bytes, %r)" % (len(self.data), self.content_type)


def encode_value(value: Any) -> Tuple[bytes, str]:
    """A handler's result (or a child's input) as bytes and a content type:
    bytes as is, str as UTF-8 text, None as nothing, Output as given,
    anything else as JSON."""
    if value is None:
        return b"", ""
    if isinstance(value, Output):
        return value.data, value.content_type
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value), OCTET_STREAM
    if isinstance(value, str):
        return value.encode("utf-8"), TEXT_UTF8
    return dumps(value), JSON_TYPE


_CHILD_KEYS = frozenset(
    ["key", "handler", "input", "content_type", "command", "args", "needs", "after", "retries", "timeout_ms", "labels", "pool"]
)


def child_spec(child: Dict[str, Any]) -> Dict[str, Any]:
    """A ChildSpec (proto3 JSON) from a child as handlers describe it:

    {"key": "a", "handler": "resize", "input": {...}, "needs": ["b"], "retries": 2}
    or {"key": "a", "command": "/bin/echo", "args": ["hi"]}.
    """
    if not isinstance(child, dict):
        raise TypeError("a child to spawn is a dict with at least 'key' and 'handler' (or 'command'), got %r" % (child,))
    unknown = sorted(set(child) - _CHILD_KEYS)
    if unknown:
        raise ValueError("unknown key(s) %s in a child to spawn; expected some of %s" % (unknown, sorted(_CHILD_KEYS)))
    key = child.get("key")
    if not key or not isinstance(key, str):
        raise ValueError("a child to spawn needs a 'key' (a non-empty string), got %r" % (key,))
    spec: Dict[str, Any] = {"name": key}
    if child.get("handler"):
        if child.get("command"):
            raise ValueError("child %r has both 'handler' and 'command'; give one" % key)
        data, content_type = encode_value(child.get("input"))
        if child.get("content_type"):
            content_type = child["content_type"]
        target: Dict[str, Any] = {"handler": child["handler"]}
        if data:
            target["input"] = b64encode(data)
        if content_type:
            target["contentType"] = content_type
        spec["handler"] = target
    elif child.get("command"):
        spec["exec"] = {"command": child["command"], "args": [str(a) for a in child.get("args") or []]}
    else:
        raise ValueError("child %r needs a 'handler' (or a 'command')" % key)
    for field in ("needs", "after"):
        names = child.get(field)
        if names:
            if isinstance(names, str):
                names = [names]
            spec[field] = list(names)
    if child.get("retries"):
        spec["retry"] = {"retries": int(child["retries"])}
    if child.get("timeout_ms"):
        spec["timeoutMs"] = int(child["timeout_ms"])
    if child.get("labels"):
        spec["labels"] = dict(child["labels"])
    if child.get("pool"):
        spec["pool"] = child["pool"]
    return {"key": key, "spec": spec}
