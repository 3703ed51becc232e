"""Dialect-neutral text for non-text blocks, so the same content renders to the same tokens
whichever API it arrived through (and a prefix cached through one API is reusable through the other)."""

from __future__ import annotations

import json
from typing import Any

from cachepoint.errors import ValidationError
from cachepoint.types import Block, BlockKind, Checkpoint


def obj(value: Any, path: str) -> dict[str, Any]:
    """A JSON object from the wire, or a validation error naming where it was expected."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(f"{path}: Input should be a valid dictionary")
    return value


def text_of(value: Any, path: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(f"{path}: Input should be a valid string")
    return value


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def tool_block(name: str, description: str, schema: Any, checkpoint: Checkpoint | None = None) -> Block:
    text = canonical_json({"name": name, "description": description, "parameters": schema})
    return Block(BlockKind.TEXT, text, checkpoint)


def tool_use_block(tool_use_id: str, name: str, tool_input: Any, checkpoint: Checkpoint | None = None) -> Block:
    text = "<tool_call>" + canonical_json({"id": tool_use_id, "name": name, "input": tool_input}) + "</tool_call>"
    return Block(BlockKind.TOOL_USE, text, checkpoint)


def tool_result_block(
    tool_use_id: str, parts: list[str], is_error: bool, checkpoint: Checkpoint | None = None
) -> Block:
    status = " error" if is_error else ""
    text = f'<tool_response id="{tool_use_id}"{status}>' + "\n".join(parts) + "</tool_response>"
    return Block(BlockKind.TOOL_RESULT, text, checkpoint)


def tool_change_block(change: str, name: str, checkpoint: Checkpoint | None = None) -> Block:
    """A tool made available or withdrawn mid-conversation (Converse `toolAddition` / `toolRemoval`)."""
    return Block(BlockKind.TEXT, f"<tool_change {change}>{name}</tool_change>", checkpoint)


def image_block(media_type: str, checkpoint: Checkpoint | None = None) -> Block:
    # The local models are text-only: the image is named, not seen.
    return Block(BlockKind.IMAGE, f"[image: {media_type}]", checkpoint)


def document_block(name: str, text: str | None, checkpoint: Checkpoint | None = None) -> Block:
    body = f"\n{text}" if text else ""
    return Block(BlockKind.DOCUMENT, f"[document: {name}]{body}", checkpoint)


def reasoning_block(text: str, checkpoint: Checkpoint | None = None) -> Block:
    return Block(BlockKind.REASONING, f"<thinking>{text}</thinking>", checkpoint)
