"""botocore's newest Converse shapes and Nova's native InvokeModel body, sent by the real boto3 to the real model:
a `system` message and tool changes appended after a cached prefix (the prefix is still read), `serviceTier`
echoed back, and Nova's own body writing then reading its prefix."""

from __future__ import annotations

from typing import Any

import botocore

from tests.e2e.test_caching import SONNET, document
from tests.live import LiveServer

TOOLS = {"tools": [{"toolSpec": {"name": name, "inputSchema": {"json": {"type": "object"}}}} for name in ("lookup", "search")]}


def test_newer_boto3_shapes_are_served_and_keep_the_cache(runtime: Any) -> None:
    assert tuple(int(p) for p in botocore.__version__.split(".")) >= (1, 44, 8)  # the model with these shapes
    opening = [
        {"role": "user", "content": [{"text": document("shapes")}, {"cachePoint": {"type": "default"}}]},
        {"role": "assistant", "content": [{"text": "Noted."}]},
    ]
    first = runtime.converse(modelId=SONNET, messages=opening + [{"role": "user", "content": [{"text": "Sum?"}]}],
                             toolConfig=TOOLS, inferenceConfig={"maxTokens": 4}, serviceTier={"type": "flex"})  # fmt: skip
    written = first["usage"]["cacheWriteInputTokens"]
    assert written > 1024 and first["serviceTier"] == {"type": "flex"}
    steering = {"role": "system", "content": [{"text": "Answer tersely."}, {"toolAddition": {"tool": {"name": "search"}}},
                                               {"toolRemoval": {"tool": {"name": "lookup"}}}]}  # fmt: skip
    later = opening + [steering, {"role": "user", "content": [{"text": "And now?"}]}]
    second = runtime.converse(modelId=SONNET, messages=later, toolConfig=TOOLS, inferenceConfig={"maxTokens": 4})
    assert second["usage"]["cacheReadInputTokens"] == written and "serviceTier" not in second
    assert second["ResponseMetadata"]["HTTPHeaders"]["x-cachepoint-cache"] == f"hit:{written}:5m:ram"


def test_novas_native_invoke_body_with_a_cache_point(runtime: Any) -> None:
    """AWS's own caching example for Nova: InvokeModel with the native body; the real boto3, the real model."""
    import json

    def invoke(question: str) -> dict[str, Any]:
        body = {"schemaVersion": "messages-v1", "system": [{"text": document("nova")}, {"cachePoint": {"type": "default"}}],
                "messages": [{"role": "user", "content": [{"text": question}]}], "inferenceConfig": {"maxTokens": 4}}  # fmt: skip
        answer = runtime.invoke_model(modelId="us.amazon.nova-pro-v1:0", body=json.dumps(body))
        return dict(json.loads(answer["body"].read())["usage"])

    first, second = invoke("Sum?"), invoke("Count?")
    assert first["cacheWriteInputTokenCount"] > 1024 and first["cacheReadInputTokenCount"] == 0
    assert second["cacheReadInputTokenCount"] == first["cacheWriteInputTokenCount"]


def test_a_cache_point_inside_a_tool_result_on_the_real_model(live: LiveServer) -> None:
    """Bedrock accepts `cachePoint` in `toolResult.content`; botocore's model cannot express it, so the body goes
    out as any HTTP client would send it, signed with SigV4 by botocore's signer."""
    import json

    import httpx
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    conversation = [
        {"role": "user", "content": [{"text": "Look up the ledger."}]},
        {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {}}}]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [
            {"text": document("tool-result")}, {"cachePoint": {"type": "default", "ttl": "1h"}}]}}]},
    ]  # fmt: skip

    def converse() -> httpx.Response:
        url = f"{live.url}/model/{SONNET}/converse"
        data = json.dumps({"messages": conversation, "toolConfig": TOOLS, "inferenceConfig": {"maxTokens": 3}})
        request = AWSRequest("POST", url, data=data, headers={"content-type": "application/json"})
        SigV4Auth(Credentials("AKIDTOOLRESULT", "secret"), "bedrock", "us-east-1").add_auth(request)
        return httpx.post(url, content=data, headers=dict(request.headers), timeout=120)

    first, second = converse(), converse()
    assert first.status_code == 200, first.text
    written = first.json()["usage"]["cacheWriteInputTokens"]
    assert written > 1024 and first.json()["usage"]["cacheDetails"] == [{"ttl": "5m", "inputTokens": written}]
    assert second.json()["usage"]["cacheReadInputTokens"] == written
