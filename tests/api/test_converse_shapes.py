"""Converse shapes of botocore's newest bedrock-runtime model, as botocore serializes them: a `system` role
message mid-conversation, `toolAddition` / `toolRemoval` blocks, and `serviceTier` echoed in the response."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.wire import Boto, bedrock_error, event_stream

SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
DOCUMENT = "0123456789" * 110
TOOLS = {"tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object"}}}},
                   {"toolSpec": {"name": "search", "inputSchema": {"json": {"type": "object"}}}}]}  # fmt: skip


def history(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": [{"text": DOCUMENT}, {"cachePoint": {"type": "default"}}]},
        {"role": "assistant", "content": [{"text": "Noted."}]},
        *extra,
    ]


def test_a_system_message_and_tool_changes_mid_conversation_keep_the_cached_prefix(runtime: Boto) -> None:
    first = runtime("Converse", modelId=SONNET, messages=history(), toolConfig=TOOLS)
    assert first.status_code == 200, first.text
    written = first.json()["usage"]["cacheWriteInputTokens"]
    steering = {"role": "system", "content": [{"text": "Answer in French."}, {"toolAddition": {"tool": {"name": "search"}}},
                                               {"toolRemoval": {"tool": {"name": "lookup"}}}]}  # fmt: skip
    later = history(steering, {"role": "user", "content": [{"text": "Next?"}]})
    second = runtime("Converse", modelId=SONNET, messages=later, toolConfig=TOOLS)
    assert second.status_code == 200, second.text
    assert second.json()["usage"]["cacheReadInputTokens"] == written  # appended after the prefix: still read


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([{"role": "system", "content": [{"text": "x"}]}, {"role": "user", "content": [{"text": "q"}]}],
         "A conversation must start with a user message. Try again with a conversation that starts with a user message."),
        (history({"role": "system", "content": [{"toolAddition": {"tool": {"name": "missing"}}}]}),
         "The tool missing referenced at messages.2.content.0.toolAddition is not declared in toolConfig. Declare it "
         "in toolConfig.tools and try again."),
        (history({"role": "system", "content": [{"toolRemoval": {"tool": {}}}]}),
         "messages.2.content.0.toolRemoval.tool.name: Field required"),
        (history({"role": "system", "content": [{"text": "x"}]}, {"role": "assistant", "content": [{"text": "a"}]}),
         "A conversation must alternate between user and assistant roles. Make sure the conversation alternates "
         "between user and assistant roles and try again."),
    ],
)  # fmt: skip
def test_bad_system_messages_and_tool_references(runtime: Boto, messages: list[Any], message: str) -> None:
    response = runtime("Converse", modelId=SONNET, messages=messages, toolConfig=TOOLS)
    assert bedrock_error(response) == (400, "ValidationException", {"message": message})


def test_the_service_tier_is_echoed_in_converse_and_converse_stream(runtime: Boto) -> None:
    response = runtime("Converse", modelId=SONNET, messages=history(), serviceTier={"type": "flex"})
    assert response.status_code == 200 and response.json()["serviceTier"] == {"type": "flex"}
    plain = runtime("Converse", modelId=SONNET, messages=history())
    assert "serviceTier" not in plain.json()
    stream = runtime("ConverseStream", modelId=SONNET, messages=history(), serviceTier={"type": "priority"})
    metadata = [payload for headers, payload in event_stream(stream.content) if headers[":event-type"] == "metadata"]
    assert metadata[0]["serviceTier"] == {"type": "priority"}
    wrong = runtime("Converse", modelId=SONNET, messages=history(), serviceTier={"type": "cheap"})
    assert bedrock_error(wrong) == (400, "ValidationException", {"message": (
        "1 validation error detected: Value 'cheap' at 'serviceTier.type' failed to satisfy constraint: "
        "Member must satisfy enum value set: [priority, default, flex, reserved]")})  # fmt: skip
