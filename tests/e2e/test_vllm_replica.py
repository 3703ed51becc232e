"""A Region whose replica is someone else's vLLM server (`vllm://HOST:PORT`): the session's managed vLLM,
attached by a second gateway. The call runs there, is named by `x-cachepoint-replica`, and the read is served
by vLLM's own prefix cache (its physically cached tokens reported beside Bedrock's usage)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cachepoint.bootstrap import build_services
from cachepoint.routing.profiles import ProfileStore
from cachepoint.settings import managed_vllm, settings_from_table
from tests.e2e.conftest import clients_of
from tests.e2e.test_vllm import backend_of
from tests.live import LiveServer, serve

SYSTEM = "You are a meticulous literary translator who keeps every name and idiom intact. " * 90


def test_a_region_served_by_an_attached_vllm_replica(vllm_live: LiveServer, tmp_path: Path) -> None:
    address = backend_of(vllm_live).url.removeprefix("http://")
    engine = managed_vllm({}) | {"managed": False, "url": f"http://{address}"}
    table = {"server": {"state_dir": str(tmp_path)}, "engines": {"default": engine},
             "regions": {"us-east-1": {"replicas": [f"vllm://{address}"]}}}  # fmt: skip
    services = build_services(settings_from_table(table), profiles=ProfileStore(":memory:"))
    with serve(services) as gateway:
        runtime: Any = clients_of(gateway)()
        answers = [
            runtime.converse(
                modelId="us.anthropic.claude-sonnet-4-5-20250929-v1:0",
                system=[{"text": SYSTEM}, {"cachePoint": {"type": "default"}}],
                messages=[{"role": "user", "content": [{"text": f"Question {i}"}]}],
                inferenceConfig={"maxTokens": 4, "temperature": 0},
            )
            for i in range(2)
        ]
    headers = [a["ResponseMetadata"]["HTTPHeaders"] for a in answers]
    assert [h["x-cachepoint-replica"] for h in headers] == [f"vllm://{address}"] * 2
    tokens = answers[0]["usage"]["cacheWriteInputTokens"]
    assert tokens > 1024 and headers[1]["x-cachepoint-cache"] == f"hit:{tokens}:5m:ram"
    figures = dict(part.split("=") for part in headers[1]["x-cachepoint-prefill"].split(";"))
    assert int(figures["engine_cached"]) > tokens - 128  # vLLM reused the prefix (whole blocks: 128 on CPU)
