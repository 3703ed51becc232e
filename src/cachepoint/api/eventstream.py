"""AWS event-stream frames (application/vnd.amazon.eventstream), encoded with the stdlib.

    total_length u32 | headers_length u32 | prelude_crc u32 | headers | payload | message_crc u32
A header is name_len u8 | name | type u8 (7 = string) | value_len u16 | value. CRC32 is zlib's.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

_STRING = 7


def encode_frame(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    encoded = b"".join(_header(name, value) for name, value in headers)
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">BH", _STRING, len(raw_value)) + raw_value


def event_frame(event_type: str, body: dict[str, Any]) -> bytes:
    headers = [(":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")]
    return encode_frame(headers, _json(body))


def exception_frame(exception_type: str, body: dict[str, Any]) -> bytes:
    headers = [
        (":exception-type", exception_type),
        (":content-type", "application/json"),
        (":message-type", "exception"),
    ]
    return encode_frame(headers, _json(body))


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
