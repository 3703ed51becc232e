"""Nova's native InvokeModel body with `cachePoint` (AWS's own caching example), as botocore sends it: served
with Nova's rules and answered in Nova's native response shape, buffered and streamed."""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.api.wire import Boto, bedrock_error, event_stream

NOVA = "us.amazon.nova-pro-v1:0"
DOCUMENT = "0123456789" * 110  # 1,100 fake tokens: above Nova's 1,024-token minimum


def nova_body(question: str = "Q?", **extra: Any) -> dict[str, Any]:
    return {
        "schemaVersion": "messages-v1",
        "system": [{"text": DOCUMENT}, {"cachePoint": {"type": "default"}}],
        "messages": [{"role": "user", "content": [{"text": question}]}],
        "inferenceConfig": {"maxTokens": 8, "temperature": 0},
    } | extra


def invoke(runtime: Boto, body: dict[str, Any], model: str = NOVA) -> Any:
    return runtime("InvokeModel", modelId=model, body=json.dumps(body).encode(), contentType="application/json")


def test_nova_native_body_writes_then_reads_in_novas_response_shape(runtime: Boto) -> None:
    first, second = invoke(runtime, nova_body()), invoke(runtime, nova_body("Another?"))
    assert first.status_code == 200, first.text
    written = first.json()["usage"]["cacheWriteInputTokenCount"]
    assert written > 1024 and first.headers["x-cachepoint-cache"] == f"written:{written}:5m:new"
    body = second.json()
    assert set(body) == {"output", "stopReason", "usage"} and body["stopReason"] == "max_tokens"
    assert body["output"]["message"]["role"] == "assistant" and body["output"]["message"]["content"][0]["text"]
    usage = body["usage"]
    assert usage["cacheReadInputTokenCount"] == written and usage["cacheWriteInputTokenCount"] == 0
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"] + written
    assert second.headers["X-Amzn-Bedrock-Cache-Read-Input-Token-Count"] == str(written)


def test_nova_native_stream_sends_converse_events_as_chunks(runtime: Boto) -> None:
    response = runtime("InvokeModelWithResponseStream", modelId=NOVA, body=json.dumps(nova_body()).encode(),
                       contentType="application/json")  # fmt: skip
    assert response.status_code == 200, response.text
    chunks = [json.loads(base64.b64decode(p["bytes"])) for h, p in event_stream(response.content) if h[":event-type"] == "chunk"]
    assert next(iter(chunks[0])) == "messageStart" and "contentBlockDelta" in chunks[1]
    last = chunks[-1]
    assert last["metadata"]["usage"]["cacheWriteInputTokenCount"] > 1024
    assert last["amazon-bedrock-invocationMetrics"]["cacheWriteInputTokenCount"] == last["metadata"]["usage"]["cacheWriteInputTokenCount"]


def test_novas_rules_and_a_body_of_the_wrong_family(runtime: Boto) -> None:
    tools_checkpoint = nova_body(toolConfig={"tools": [{"toolSpec": {"name": "t", "inputSchema": {"json": {}}}},
                                                       {"cachePoint": {"type": "default"}}]})  # fmt: skip
    status, kind, _ = bedrock_error(invoke(runtime, tools_checkpoint))
    assert (status, kind) == (400, "ValidationException")  # Nova takes no checkpoint in tools
    to_claude = invoke(runtime, nova_body(), "us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert bedrock_error(to_claude) == (400, "ValidationException", {"message": (
        "Malformed input request: #: required key [anthropic_version] not found, please reformat your input and "
        "try again.")})  # fmt: skip
    anthropic_body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 8,
                      "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    status, kind, body = bedrock_error(invoke(runtime, anthropic_body))
    assert (status, kind) == (400, "ValidationException") and "Nova Pro takes its native body" in body["message"]


def test_count_tokens_takes_a_nova_invoke_body(runtime: Boto) -> None:
    body = json.dumps(nova_body()).encode()  # botocore base64-encodes the blob
    response = runtime("CountTokens", modelId="amazon.nova-pro-v1:0", input={"invokeModel": {"body": body}})
    assert response.status_code == 200, response.text
    assert response.json()["inputTokens"] > 1100
