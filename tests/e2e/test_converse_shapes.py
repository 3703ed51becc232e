"""botocore's newest Converse shapes, sent by the real boto3 to the real model: a `system` message and tool
changes appended after a cached prefix (the prefix is still read), and `serviceTier` echoed back."""

from __future__ import annotations

from typing import Any

import botocore

from tests.e2e.test_caching import SONNET, document

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
