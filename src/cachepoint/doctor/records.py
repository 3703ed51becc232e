"""One invocation-log record: decoded from JSON safely, then validated into a typed `LogRecord`.

Decoding refuses what would hurt later code: NaN and Infinity (not JSON, and they poison every sum), and
nesting deeper than a limit, checked without recursion (pydantic and the translators recurse, so catching
the parser's RecursionError alone would only move the crash). Validation types the members the doctor
uses; the rest of a record is ignored. Analysis and costs only ever see `LogRecord`s.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cachepoint.doctor.skips import Rejected, SkipReason

SCHEMA = "ModelInvocationLog"
MAX_COUNT = 2**63 - 1  # token counts are 64-bit in every Bedrock surface
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|\+00:00)")
_SHOWN_CHARS = 40


@dataclass(frozen=True, slots=True)
class LogRecord:
    """The members of a ModelInvocationLog record the doctor uses. Counts are non-negative ints; `inference_region`
    is where the request ran (`inferenceRegion`, else `region`); `body` is the logged request, if it is an object."""

    time_s: float
    model_id: str = ""
    request_id: str | None = None
    region: str = ""
    inference_region: str = ""
    account_id: str = ""
    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0  # part of cache_write_tokens (cachepoint's extension)
    output_tokens: int = 0
    error_code: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] | None = field(default=None, repr=False)


def loads(text: str) -> object:
    """A JSON value, or `Rejected` (invalid JSON, NaN/Infinity, a number too large, nesting the parser refuses)."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise Rejected(SkipReason.TOO_DEEP, "nested too deep for the JSON parser") from None
    except ValueError as error:  # JSONDecodeError, NaN/Infinity, the int digit limit, a float that overflows
        raise Rejected(SkipReason.INVALID_JSON, str(error)) from None


def decode(text: str, max_depth: int) -> object:
    """`loads`, then `check_depth` unless the text has too few brackets to nest that deep (most records)."""
    value = loads(text)
    if text.count("{") + text.count("[") > max_depth:
        check_depth(value, max_depth)
    return value


def check_depth(value: object, max_depth: int) -> None:
    """`Rejected` when objects and arrays nest deeper than `max_depth` (a flat object is depth 1); no recursion."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise Rejected(SkipReason.TOO_DEEP, f"nested deeper than {max_depth} levels")
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def parse_record(value: object) -> LogRecord | None:
    """The typed record, None for a record of another schema, or `Rejected` saying which member is wrong."""
    if not isinstance(value, dict):
        raise Rejected(SkipReason.NOT_AN_OBJECT, f"a JSON {_json_type(value)}, not an object")
    schema = _string(value, "schemaType")
    if schema is not None and schema != SCHEMA:
        return None
    source, output, ours = _object(value, "input"), _object(value, "output"), _object(value, "cachepoint")
    write = _count(source, "cacheWriteInputTokenCount", "input.")
    write_1h = _count(ours, "cacheWrite1hInputTokenCount", "cachepoint.")
    if write_1h > write:
        raise Rejected(SkipReason.INVALID_RECORD, "cachepoint.cacheWrite1hInputTokenCount > cacheWriteInputTokenCount")
    region = _name(value, "region")
    body = source.get("inputBodyJson")
    return LogRecord(
        time_s=_time(value),
        model_id=_name(value, "modelId"),
        request_id=_string(value, "requestId"),
        region=region,
        inference_region=_name(value, "inferenceRegion") or region,
        account_id=_name(value, "accountId"),
        input_tokens=_count(source, "inputTokenCount", "input."),
        cache_read_tokens=_count(source, "cacheReadInputTokenCount", "input."),
        cache_write_tokens=write,
        cache_write_1h_tokens=write_1h,
        output_tokens=_count(output, "outputTokenCount", "output."),
        error_code=_string(value, "errorCode"),
        tags=_tags(ours),
        body=body if isinstance(body, dict) else None,
    )


def as_records(records: Iterable[LogRecord | Mapping[str, Any]]) -> list[LogRecord]:
    """Records as given by a caller: typed ones pass through, raw mappings are validated (`Rejected` if invalid)."""
    typed = (r if isinstance(r, LogRecord) else parse_record(dict(r)) for r in records)
    return [r for r in typed if r is not None]


def parse_timestamp(text: str) -> float:
    """Seconds since the epoch of an ISO-8601 UTC time as Bedrock writes it (2026-11-01T10:00:00Z), else ValueError."""
    if not _TIMESTAMP.fullmatch(text):
        raise ValueError(f"not an ISO-8601 UTC time like 2026-11-01T10:00:00Z: {_show(text)}")
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def iso_time(text: str) -> float:
    """Seconds since the epoch of any ISO-8601 date or time; one without an offset is UTC. For --since/--until."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _time(record: Mapping[str, object]) -> float:
    text = _string(record, "timestamp")
    if text is None:
        raise Rejected(SkipReason.INVALID_RECORD, "timestamp is missing")
    try:
        return parse_timestamp(text)
    except ValueError as error:  # the pattern matched but the date does not exist (2026-02-30)
        raise Rejected(SkipReason.INVALID_RECORD, f"timestamp: {error}") from None


def _string(members: Mapping[str, object], key: str) -> str | None:
    value = members.get(key)
    if value is None or isinstance(value, str):
        return value
    raise Rejected(SkipReason.INVALID_RECORD, f"{key} is not a string: {_show(value)}")


def _name(members: Mapping[str, object], key: str) -> str:
    # interned: the same few model ids, Regions and accounts repeat in every record, and records are all kept
    return sys.intern(_string(members, key) or "")


def _count(members: Mapping[str, object], key: str, where: str) -> int:
    value = members.get(key)
    if value is None:
        return 0
    if type(value) is not int or not 0 <= value <= MAX_COUNT:  # type(): bool is an int subclass
        raise Rejected(SkipReason.INVALID_RECORD, f"{where}{key} is not a non-negative integer: {_show(value)}")
    return value


def _object(members: Mapping[str, object], key: str) -> dict[str, object]:
    value = members.get(key)
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise Rejected(SkipReason.INVALID_RECORD, f"{key} is not an object: {_show(value)}")


def _tags(ours: Mapping[str, object]) -> dict[str, str]:
    tags = _object(ours, "tags")
    typed = {key: value for key, value in tags.items() if isinstance(value, str)}
    if len(typed) < len(tags):
        key = next(key for key in tags if key not in typed)
        raise Rejected(SkipReason.INVALID_RECORD, f"cachepoint.tags.{key} is not a string: {_show(tags[key])}")
    return typed


def _show(value: object) -> str:
    if isinstance(value, dict | list):
        return f"a JSON {_json_type(value)}"
    shown = repr(value)
    return shown if len(shown) <= _SHOWN_CHARS else shown[: _SHOWN_CHARS - 1] + "…"


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text[:_SHOWN_CHARS]} does not fit a float")
    return number
