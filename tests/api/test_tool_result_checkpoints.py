"""Converse `cachePoint` inside `toolResult.content` (Bedrock accepts it; botocore 1.44.8's model has no such
member, so no SDK sends it: the body is posted as a raw HTTP client would): it marks the tool result, its TTL
forced to 5m, and is never rendered as text."""

from __future__ import annotations

import json
from typing import Any

from starlette.testclient import TestClient

from tests.api.wire import sigv4_headers

PATH = "/model/us.anthropic.claude-sonnet-4-6/converse"
RESULT = "0123456789" * 110  # 1,100 tokens on the fake engine
TOOLS = {"tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object"}}}}]}


def body(*parts: dict[str, Any]) -> dict[str, Any]:
    return {
        "toolConfig": TOOLS,
        "inferenceConfig": {"maxTokens": 2},
        "messages": [
            {"role": "user", "content": [{"text": "Look it up."}]},
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": list(parts)}},
                                         {"text": "And?"}]},  # fmt: skip
        ],
    }


def post(client: TestClient, data: dict[str, Any]) -> Any:
    return client.post(PATH, content=json.dumps(data), headers=sigv4_headers() | {"content-type": "application/json"})


def test_a_cache_point_in_a_tool_result_marks_it_with_a_5m_ttl(client: TestClient) -> None:
    marked = body({"text": RESULT}, {"cachePoint": {"type": "default", "ttl": "1h"}})
    first, second = post(client, marked), post(client, marked)
    assert first.status_code == 200, first.text
    written = first.json()["usage"]["cacheWriteInputTokens"]
    assert written > 1100 and first.headers["x-cachepoint-cache"] == f"written:{written}:5m:new"
    assert first.json()["usage"]["cacheDetails"] == [{"ttl": "5m", "inputTokens": written}]
    assert second.json()["usage"]["cacheReadInputTokens"] == written
    plain = post(client, body({"text": RESULT}))  # without the marker: the same prompt, not "[cachePoint]" text
    assert prompt_tokens(plain.json()["usage"]) == prompt_tokens(first.json()["usage"])


def prompt_tokens(usage: dict[str, int]) -> int:
    return usage["inputTokens"] + usage.get("cacheReadInputTokens", 0) + usage.get("cacheWriteInputTokens", 0)


def test_bad_markers_in_a_tool_result_get_bedrocks_errors(client: TestClient) -> None:
    where = "messages.2.content.0.toolResult.content.1"
    bad_type = post(client, body({"text": RESULT}, {"cachePoint": {"type": "ephemeral"}}))
    assert bad_type.status_code == 400 and bad_type.json()["message"] == (
        f"1 validation error detected: Value 'ephemeral' at '{where}.cachePoint.type' failed to satisfy constraint: "
        "Member must satisfy enum value set: [default]")  # fmt: skip
    first = post(client, body({"cachePoint": {"type": "default"}}, {"text": RESULT}))
    assert first.status_code == 400 and first.json()["message"] == (
        "There is nothing available to cache. Please remove the invalid cache point and try again.")
