"""pydantic errors → each dialect's own validation wording.

- Bedrock Converse (Coral): `1 validation error detected: Value '0' at 'inferenceConfig.maxTokens'
  failed to satisfy constraint: Member must have value greater than or equal to 1`
- Bedrock InvokeModel (JSON schema): `Malformed input request: #: required key [max_tokens] not found,
  please reformat your input and try again.`
- Anthropic: `max_tokens: Field required`
"""

from __future__ import annotations

import json
from typing import Any

import pydantic


def coral_value_error(field: str, value: object, constraint: str) -> str:
    """One Coral validation error for a value checked outside pydantic (query parameters)."""
    item = f"Value '{_short(value)}' at '{field}' failed to satisfy constraint: {constraint}"
    return f"1 validation error detected: {item}"


def coral_message(error: pydantic.ValidationError) -> str:
    items = [_coral_item(e) for e in error.errors()]
    noun = "error" if len(items) == 1 else "errors"
    return f"{len(items)} validation {noun} detected: " + "; ".join(items)


def _coral_item(e: Any) -> str:
    path = ".".join(str(p) for p in e["loc"])
    value = "null" if e["type"] == "missing" else f"'{_short(e.get('input'))}'"
    return f"Value {value} at '{path}' failed to satisfy constraint: {_constraint(e)}"


def _constraint(e: Any) -> str:
    ctx = e.get("ctx") or {}
    kind = e["type"]
    if kind == "missing":
        return "Member must not be null"
    if kind in ("greater_than_equal", "greater_than"):
        return f"Member must have value greater than or equal to {_number(ctx.get('ge', ctx.get('gt')))}"
    if kind in ("less_than_equal", "less_than"):
        return f"Member must have value less than or equal to {_number(ctx.get('le', ctx.get('lt')))}"
    if kind == "literal_error":
        values = ctx.get("expected", "").replace("'", "").replace(" or ", ", ")  # pydantic: "'a', 'b' or 'c'"
        return f"Member must satisfy enum value set: [{values}]"
    if kind in ("too_short", "too_long", "string_too_short", "string_too_long"):
        bound = "greater" if kind.endswith("too_short") else "less"
        return f"Member must have length {bound} than or equal to {ctx.get('min_length', ctx.get('max_length'))}"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", "")).removeprefix("^").removesuffix("$")
        return f"Member must satisfy regular expression pattern: {pattern}"
    return f"Member must be valid ({e['msg']})"


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def json_schema_message(error: pydantic.ValidationError) -> str:
    items = [_schema_item(e) for e in error.errors()]
    return "Malformed input request: " + "".join(items) + ", please reformat your input and try again."


def _schema_item(e: Any) -> str:
    loc = [str(p) for p in e["loc"]]
    if e["type"] == "missing":
        parent = "#" + "".join(f"/{p}" for p in loc[:-1])
        return f"{parent}: required key [{loc[-1]}] not found"
    if e["type"] == "extra_forbidden":
        parent = "#" + "".join(f"/{p}" for p in loc[:-1])
        return f"{parent}: extraneous key [{loc[-1]}] is not permitted"
    return "#" + "".join(f"/{p}" for p in loc) + f": {e['msg']}"


def anthropic_message(error: pydantic.ValidationError) -> str:
    first = error.errors()[0]
    path = ".".join(str(p) for p in first["loc"])
    return f"{path}: {first['msg']}"


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 64 else text[:61] + "..."
