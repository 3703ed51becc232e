"""Decoding a JSON request body with bounds on everything a hostile body can multiply.

`json.loads` alone accepts NaN and Infinity, lone UTF-16 surrogates (`"\\ud800"`, which later fail
to encode), nesting up to the interpreter's recursion limit, and any number of containers. Each of
those became a 500 or a stall further down. Here they are refused up front, with Bedrock's wording:

- NaN / Infinity are not JSON;
- more than `max_nodes` containers, counted while parsing (objects through the hook, so a body of a
  million tiny blocks stops early) and after it (arrays);
- nesting deeper than `max_depth`, so nothing downstream (pydantic, rendering, log writing) recurses far;
- strings that cannot be encoded as UTF-8.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
from typing import Any

from cachepoint.errors import ValidationError

MALFORMED = "Malformed input request, please reformat your input and try again."


@dataclass(frozen=True)
class JsonLimits:
    max_nodes: int = 200_000
    max_depth: int = 64


class _TooManyNodes(Exception):
    pass


def decode_json(raw: bytes, limits: JsonLimits = JsonLimits()) -> Any:
    """The parsed body, or ValidationError. Costs O(len(raw)) and at most `max_nodes` objects."""
    count = 0

    def on_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal count
        count += 1
        if count > limits.max_nodes:
            raise _TooManyNodes
        return dict(pairs)

    try:
        data = json.loads(raw, object_pairs_hook=on_object, parse_constant=_refuse_constant)
    except _TooManyNodes:
        raise ValidationError(_too_complex(limits)) from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ValidationError(MALFORMED) from None
    check_tree(data, limits)
    return data


def check_tree(data: Any, limits: JsonLimits) -> None:
    """Iterative walk (no recursion of our own): depth, container count and encodable strings."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value)
            continue
        if not isinstance(value, dict | list):
            continue
        nodes += 1
        if depth > limits.max_depth:
            raise ValidationError(f"The request is nested more than {limits.max_depth} levels deep.")
        if nodes > limits.max_nodes:
            raise ValidationError(_too_complex(limits))
        if isinstance(value, dict):
            stack.extend((k, depth) for k in value)
            stack.extend((v, depth + 1) for v in value.values())
        else:
            stack.extend((v, depth + 1) for v in value)


def dumps_strict(value: Any) -> str:
    """JSON for storage: NaN and Infinity are refused, so what is stored can always be read back."""
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


def _check_text(text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{MALFORMED} The body contains an unpaired UTF-16 surrogate.") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _too_complex(limits: JsonLimits) -> str:
    return f"The request has more than {limits.max_nodes} JSON objects and arrays."
