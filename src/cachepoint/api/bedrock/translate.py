"""Converse wire shapes ↔ canonical values.

A `cachePoint` element becomes a Checkpoint on the block before it in the same container (as Bedrock
turns it into `cache_control` on that block); its error path counts blocks without the markers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from itertools import pairwise
from typing import Any

from cachepoint.api.bedrock.schema import (
    ConverseInput,
    ConverseRequest,
    InferenceConfigIn,
    MessageIn,
    NovaInferenceIn,
    NovaInvokeBody,
)
from cachepoint.errors import ValidationError
from cachepoint.prompt import blocks as b
from cachepoint.prompt.salt import with_message_salt
from cachepoint.types import Block, BlockKind, Checkpoint, Message, Prompt, Role, SamplingParams, Ttl

NOTHING_TO_CACHE = "There is nothing available to cache. Please remove the invalid cache point and try again."
AFTER_REASONING = (
    "Cache point cannot be inserted after reasoning block. Please remove the invalid cache point and try again."
)
MUST_START_WITH_USER = (
    "A conversation must start with a user message. Try again with a conversation that starts with a user message."
)
MUST_ALTERNATE = (
    "A conversation must alternate between user and assistant roles. "
    "Make sure the conversation alternates between user and assistant roles and try again."
)


def to_prompt(request: ConverseRequest | ConverseInput | NovaInvokeBody) -> Prompt:
    _check_roles(request.messages)
    tools = request.toolConfig.tools if request.toolConfig else []
    _check_tool_references(request.messages, {_tool_name(t) for t in tools})
    prompt = Prompt(
        tools=_container(tools, "tools", "toolConfig/tools", _tool),
        system=_container(request.system or [], "system", "system", _system_block),
        messages=tuple(_message(m, i) for i, m in enumerate(request.messages)),
    )
    choice = request.toolConfig.toolChoice if request.toolConfig else None
    extra = getattr(request, "additionalModelRequestFields", None) or {}
    return with_message_salt(prompt, choice, extra.get("thinking") or extra.get("reasoning_config"))


def to_sampling(config: InferenceConfigIn | None, extra: dict[str, Any] | None) -> SamplingParams:
    config = config or InferenceConfigIn()
    top_k = (extra or {}).get("top_k", 0)
    if not isinstance(top_k, int) or top_k < 0:
        raise ValidationError("additionalModelRequestFields.top_k must be a non-negative integer")
    return SamplingParams(
        max_tokens=config.maxTokens,
        temperature=1.0 if config.temperature is None else config.temperature,
        top_p=1.0 if config.topP is None else config.topP,
        top_k=top_k,
        stop_sequences=tuple(config.stopSequences),
    )


def nova_sampling(config: NovaInferenceIn | None) -> SamplingParams:
    c = config or NovaInferenceIn()
    temperature, top_p = c.temperature, c.topP if c.topP is not None else c.top_p
    return SamplingParams(
        max_tokens=c.maxTokens or c.max_new_tokens,
        temperature=1.0 if temperature is None else temperature,
        top_p=1.0 if top_p is None else top_p,
        top_k=(c.topK if c.topK is not None else c.top_k) or 0,
        stop_sequences=tuple(c.stopSequences),
    )


def _check_roles(messages: list[MessageIn]) -> None:
    """User and assistant alternate; `system` messages (botocore's newest model) sit between them anywhere
    after the first user message and do not count as a turn."""
    if not messages or messages[0].role != "user":
        raise ValidationError(MUST_START_WITH_USER)
    for previous, current in pairwise(m for m in messages if m.role != "system"):
        if previous.role == current.role:
            raise ValidationError(MUST_ALTERNATE)
    for i, message in enumerate(messages):
        if not message.content:
            raise ValidationError(
                f"The content field in the Message object at messages.{i} is empty. "
                "Add a ContentBlock object to the content field and try again."
            )


def _message(message: MessageIn, index: int) -> Message:
    where = f"messages.{index}.content"
    return Message(Role(message.role), _container(message.content, where, f"messages/{index}/content", _content_block))


_Convert = Callable[[dict[str, Any], str], Block]


def _container(items: list[dict[str, Any]], path: str, wire: str, convert: _Convert) -> tuple[Block, ...]:
    out: list[Block] = []
    for raw_index, item in enumerate(items):
        if "cachePoint" in item:
            out[-1:] = [_attach(out, item["cachePoint"], f"{path}.{len(out) - 1}", f"{wire}/{raw_index}", path)]
        else:
            out.append(convert(item, f"{path}.{raw_index}"))
    return tuple(out)


def _attach(out: list[Block], marker: Any, path: str, wire_path: str, container: str) -> Block:
    ttl = _cache_point_ttl(marker, wire_path.replace("/", "."))
    if not out or out[-1].checkpoint is not None:
        raise ValidationError(NOTHING_TO_CACHE)
    previous = out[-1]
    if previous.kind is BlockKind.REASONING:
        raise ValidationError(AFTER_REASONING)
    return Block(previous.kind, previous.text, Checkpoint(ttl, path, wire_path))


def _cache_point_ttl(marker: Any, where: str) -> Ttl:
    if not isinstance(marker, dict) or marker.get("type") != "default":
        value = marker.get("type") if isinstance(marker, dict) else marker
        raise ValidationError(
            f"1 validation error detected: Value '{value}' at '{where}.cachePoint.type' failed to satisfy "
            "constraint: Member must satisfy enum value set: [default]"
        )
    ttl = marker.get("ttl", "5m")
    if ttl not in ("5m", "1h"):
        raise ValidationError(
            f"1 validation error detected: Value '{ttl}' at '{where}.cachePoint.ttl' failed to satisfy "
            "constraint: Member must satisfy enum value set: [5m, 1h]"
        )
    return Ttl(ttl)


def _tool_name(item: dict[str, Any]) -> str | None:
    spec = item.get("toolSpec") if isinstance(item, dict) else None
    return spec.get("name") if isinstance(spec, dict) and isinstance(spec.get("name"), str) else None


def _check_tool_references(messages: list[MessageIn], declared: set[str | None]) -> None:
    """`toolAddition` / `toolRemoval` name a tool of the top-level tool configuration (botocore's model)."""
    for i, message in enumerate(messages):
        for j, item in enumerate(message.content):
            for member in TOOL_CHANGES:
                if member in item:
                    name = _tool_reference(item[member], f"messages.{i}.content.{j}.{member}")
                    if name not in declared:
                        raise ValidationError(
                            f"The tool {name} referenced at messages.{i}.content.{j}.{member} is not declared "
                            "in toolConfig. Declare it in toolConfig.tools and try again."
                        )


def _tool_reference(value: Any, path: str) -> str:
    name = b.text_of(b.obj(b.obj(value, path).get("tool"), f"{path}.tool").get("name"), f"{path}.tool.name")
    if not name:
        raise ValidationError(f"{path}.tool.name: Field required")
    return name


def _tool_change(member: str) -> _Convert:
    def convert(value: Any, path: str) -> Block:
        return b.tool_change_block(TOOL_CHANGES[member], _tool_reference(value, f"{path}.{member}"))

    return convert


def _tool(item: dict[str, Any], path: str) -> Block:
    spec = item.get("toolSpec")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ValidationError(f"The tool at {path} must be a toolSpec with a name.")
    schema = b.obj(spec.get("inputSchema"), f"{path}.toolSpec.inputSchema").get("json", {})
    return b.tool_block(spec["name"], b.text_of(spec.get("description"), f"{path}.toolSpec.description"), schema)


def _system_block(item: dict[str, Any], path: str) -> Block:
    if "text" in item:
        return _text(item["text"], path, "SystemContentBlock")
    if "guardContent" in item:
        return _text(_guard_text(item["guardContent"], f"{path}.guardContent"), path, "SystemContentBlock")
    raise ValidationError(f"The SystemContentBlock at {path} has no supported member.")


def _content_block(item: dict[str, Any], path: str) -> Block:
    for member, convert in _CONTENT_MEMBERS.items():
        if member in item:
            return convert(item[member], path)
    raise ValidationError(f"The ContentBlock object at {path} has no supported member.")


def _text(text: Any, path: str, shape: str = "ContentBlock") -> Block:
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(
            f"The text field in the {shape} object at {path} is blank. Add text to the text field, and try again."
        )
    return Block(BlockKind.TEXT, text)


def _guard_text(guard: Any, path: str = "guardContent") -> str:
    text = b.obj(b.obj(guard, path).get("text"), f"{path}.text").get("text")
    return b.text_of(text, f"{path}.text.text")


def _tool_use(value: Any, path: str) -> Block:
    value = b.obj(value, f"{path}.toolUse")
    return b.tool_use_block(str(value.get("toolUseId", "")), str(value.get("name", "")), value.get("input", {}))


def _tool_result(value: Any, path: str) -> Block:
    """A `cachePoint` among the tool result's parts (where agent loops put it) marks the tool result itself,
    its TTL forced to 5m, as Bedrock reports it."""
    value = b.obj(value, f"{path}.toolResult")
    content = value.get("content") or []
    if not isinstance(content, list):
        raise ValidationError(f"{path}.toolResult.content: Input should be a valid list")
    parts: list[str] = []
    marker: Checkpoint | None = None
    for i, raw in enumerate(content):
        part, where = b.obj(raw, f"{path}.toolResult.content.{i}"), f"{path}.toolResult.content.{i}"
        if "cachePoint" not in part:
            parts.append(_result_part(part))
            continue
        _cache_point_ttl(part["cachePoint"], where)  # checked as anywhere else, then forced to 5m
        if not parts or marker is not None:
            raise ValidationError(NOTHING_TO_CACHE)
        marker = Checkpoint(Ttl.FIVE_MINUTES, path, where)
    block = b.tool_result_block(str(value.get("toolUseId", "")), parts, value.get("status") == "error")
    return replace(block, checkpoint=marker)


def _result_part(part: dict[str, Any]) -> str:
    if "text" in part:
        return str(part["text"])
    if "json" in part:
        return b.canonical_json(part["json"])
    return "[" + ", ".join(sorted(part)) + "]"


def _reasoning(value: Any, path: str) -> Block:
    reasoning = b.obj(
        b.obj(value, f"{path}.reasoningContent").get("reasoningText"), f"{path}.reasoningContent.reasoningText"
    )
    return b.reasoning_block(b.text_of(reasoning.get("text"), f"{path}.reasoningContent.reasoningText.text"))


def _image(value: Any, path: str) -> Block:
    return b.image_block(f"image/{b.obj(value, f'{path}.image').get('format', 'unknown')}")


def _document(value: Any, path: str) -> Block:
    value = b.obj(value, f"{path}.document")
    source = b.obj(value.get("source"), f"{path}.document.source")
    text = b.text_of(source.get("text"), f"{path}.document.source.text") or None
    return b.document_block(str(value.get("name", "document")), text)


TOOL_CHANGES = {"toolAddition": "added", "toolRemoval": "removed"}
_CONTENT_MEMBERS: dict[str, _Convert] = {
    "toolAddition": _tool_change("toolAddition"),
    "toolRemoval": _tool_change("toolRemoval"),
    "text": _text,
    "toolUse": _tool_use,
    "toolResult": _tool_result,
    "reasoningContent": _reasoning,
    "image": _image,
    "document": _document,
    "guardContent": lambda v, p: _text(_guard_text(v, f"{p}.guardContent"), p),
}
