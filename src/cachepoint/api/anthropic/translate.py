"""Anthropic Messages body ↔ canonical values. `cache_control` sits on the block it closes."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import Any

from cachepoint.api.anthropic.schema import CacheControlIn, CountTokensBody, MessageIn, ToolIn, _Body
from cachepoint.errors import ValidationError
from cachepoint.prompt import blocks as b
from cachepoint.prompt.salt import with_message_salt
from cachepoint.types import Block, BlockKind, Checkpoint, Message, Prompt, Role, SamplingParams, Ttl

FIRST_MUST_BE_USER = 'messages: first message must use the "user" role'
EMPTY_TEXT = "messages: text content blocks must be non-empty"


def to_prompt(body: _Body | CountTokensBody, *, merge_turns: bool = False) -> Prompt:
    """`merge_turns`: consecutive turns of one role become one turn, as the Anthropic API documents; InvokeModel
    bodies keep requiring alternation."""
    _check_roles(body.messages, merge_turns)
    messages = [_message(m, i) for i, m in enumerate(body.messages)]
    prompt = Prompt(
        tools=tuple(_tool(t, i) for i, t in enumerate(body.tools or [])),
        system=_system(body.system),
        messages=tuple(_merged(messages) if merge_turns else messages),
    )
    return with_message_salt(prompt, body.tool_choice, body.thinking)


def _merged(messages: list[Message]) -> list[Message]:
    merged: list[Message] = []
    for message in messages:
        if merged and merged[-1].role is message.role:
            merged[-1] = Message(message.role, merged[-1].blocks + message.blocks)
        else:
            merged.append(message)
    return merged


def to_sampling(body: _Body) -> SamplingParams:
    return SamplingParams(
        max_tokens=body.max_tokens,
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        top_k=body.top_k or 0,
        stop_sequences=tuple(body.stop_sequences or ()),
    )


def _check_roles(messages: list[MessageIn], merge_turns: bool) -> None:
    if not messages:
        raise ValidationError("messages: at least one message is required")
    if messages[0].role != "user":
        raise ValidationError(FIRST_MUST_BE_USER)
    for previous, current in pairwise(messages if not merge_turns else []):
        if previous.role == current.role:
            raise ValidationError(
                'messages: roles must alternate between "user" and "assistant", '
                f'but found multiple "{current.role}" roles in a row'
            )


def checkpoint_of(control: CacheControlIn | dict[str, Any] | None, path: str) -> Checkpoint | None:
    if control is None:
        return None
    if isinstance(control, dict):
        control = _parse_control(control, path)
    if not isinstance(control, CacheControlIn):
        raise ValidationError(f"{path}.cache_control: Input should be a valid dictionary")
    return Checkpoint(Ttl(control.ttl or "5m"), path)


def _parse_control(raw: dict[str, Any], path: str) -> CacheControlIn:
    if raw.get("type") != "ephemeral":
        raise ValidationError(f"{path}.cache_control.type: Input should be 'ephemeral'")
    if raw.get("ttl", "5m") not in ("5m", "1h"):
        raise ValidationError(f"{path}.cache_control.ttl: Input should be '5m' or '1h'")
    return CacheControlIn(type="ephemeral", ttl=raw.get("ttl"))


def _tool(tool: ToolIn, index: int) -> Block:
    return b.tool_block(
        tool.name, tool.description, tool.input_schema, checkpoint_of(tool.cache_control, f"tools.{index}")
    )


def _system(system: str | list[dict[str, Any]] | None) -> tuple[Block, ...]:
    if system is None or system == "":
        return ()
    if isinstance(system, str):
        return (Block(BlockKind.TEXT, system),)
    return tuple(_text_only(item, f"system.{i}") for i, item in enumerate(system))


def _text_only(item: dict[str, Any], path: str) -> Block:
    if item.get("type") != "text":
        raise ValidationError(f"{path}.type: Input should be 'text'")
    block = _text(item, path)
    return Block(block.kind, block.text, checkpoint_of(item.get("cache_control"), path))


def _message(message: MessageIn, index: int) -> Message:
    role = Role(message.role)
    if isinstance(message.content, str):
        if not message.content:
            raise ValidationError(EMPTY_TEXT)
        return Message(role, (Block(BlockKind.TEXT, message.content),))
    if not message.content:
        raise ValidationError(
            f"messages.{index}: all messages must have non-empty content "
            "except for the optional final assistant message"
        )
    path = f"messages.{index}.content"
    return Message(role, tuple(_content(item, f"{path}.{j}") for j, item in enumerate(message.content)))


def _content(item: dict[str, Any], path: str) -> Block:
    kind = item.get("type")
    convert = _CONTENT_TYPES.get(kind) if isinstance(kind, str) else None
    if convert is None:
        raise ValidationError(
            f"{path}.type: Input tag '{kind}' found using 'type' does not match any of the expected tags"
        )
    block = convert(item, path)
    if item.get("cache_control") is None:
        return block
    if block.kind is BlockKind.REASONING:
        raise ValidationError(f"{path}.cache_control: thinking blocks cannot be cached directly")
    return Block(block.kind, block.text, checkpoint_of(item["cache_control"], path))


def _text(item: dict[str, Any], path: str) -> Block:
    text = item.get("text")
    if not isinstance(text, str) or not text:
        raise ValidationError(EMPTY_TEXT)
    return Block(BlockKind.TEXT, text)


def _tool_result(item: dict[str, Any], path: str) -> Block:
    content = item.get("content") or ""
    if isinstance(content, str):
        parts = [content]
    elif isinstance(content, list):
        blocks = [b.obj(p, f"{path}.content.{i}") for i, p in enumerate(content)]
        parts = [str(p.get("text", f"[{p.get('type')}]")) for p in blocks]
    else:
        raise ValidationError(f"{path}.content: Input should be a valid string or list")
    block = b.tool_result_block(str(item.get("tool_use_id", "")), parts, bool(item.get("is_error")))
    return Block(block.kind, block.text, _inner_checkpoint(content, path))


def _inner_checkpoint(content: Any, path: str) -> Checkpoint | None:
    """`cache_control` on a block inside a tool result (where agent loops put it) marks the tool result: the
    prefix through its end (a cache_control on the tool_result itself wins)."""
    if not isinstance(content, list):
        return None
    marked = [(i, p) for i, p in enumerate(content) if isinstance(p, dict) and p.get("cache_control") is not None]
    if not marked:
        return None
    i, part = marked[-1]
    return checkpoint_of(part["cache_control"], f"{path}.content.{i}")


def _document(item: dict[str, Any], path: str) -> Block:
    source = b.obj(item.get("source"), f"{path}.source")
    text = b.text_of(source.get("data"), f"{path}.source.data") if source.get("type") == "text" else None
    return b.document_block(str(item.get("title") or "document"), text)


def _image(item: dict[str, Any], path: str) -> Block:
    return b.image_block(str(b.obj(item.get("source"), f"{path}.source").get("media_type", "unknown")))


_CONTENT_TYPES: dict[str, Callable[[dict[str, Any], str], Block]] = {
    "text": _text,
    "image": _image,
    "document": _document,
    "tool_use": lambda item, path: b.tool_use_block(
        str(item.get("id", "")), str(item.get("name", "")), item.get("input", {})
    ),
    "tool_result": _tool_result,
    "thinking": lambda item, path: b.reasoning_block(str(item.get("thinking", ""))),
    "redacted_thinking": lambda item, path: b.reasoning_block("[redacted]"),
}


def with_automatic_checkpoint(prompt: Prompt, control: CacheControlIn | None) -> Prompt:
    """/v1/messages' top-level `cache_control`: a checkpoint on the last block that can carry one
    (walking back over thinking blocks), moving forward as the conversation grows."""
    if control is None:
        return prompt
    ttl = Ttl(control.ttl or "5m")
    for m in range(len(prompt.messages) - 1, -1, -1):
        blocks = prompt.messages[m].blocks
        for j in range(len(blocks) - 1, -1, -1):
            if blocks[j].kind is not BlockKind.REASONING:
                return _mark(prompt, m, j, ttl)
    return prompt


def _mark(prompt: Prompt, m: int, j: int, ttl: Ttl) -> Prompt:
    message = prompt.messages[m]
    block = message.blocks[j]
    if block.checkpoint is not None:
        if block.checkpoint.ttl is not ttl:
            raise ValidationError(
                "cache_control: the automatic cache_control TTL conflicts with the one on the last block"
            )
        return prompt
    marked = Block(block.kind, block.text, Checkpoint(ttl, f"messages.{m}.content.{j}"))
    blocks = message.blocks[:j] + (marked,) + message.blocks[j + 1 :]
    messages = prompt.messages[:m] + (Message(message.role, blocks),) + prompt.messages[m + 1 :]
    return Prompt(prompt.tools, prompt.system, messages)
