"""Implicit prompt caching in process on the fake engine: a prompt without markers reuses a cached prefix, the
read billed as a read, its own write never billed; per model from the catalog, switched off per model or for all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from cachepoint.api.app import create_app
from cachepoint.bootstrap import build_services
from cachepoint.engine.fake import FakeEngine
from cachepoint.routing.profiles import ProfileStore
from cachepoint.settings import EngineSettings, Settings, settings_from_table
from tests.api.test_routes_anthropic import HEADERS
from tests.api.wire import ASSISTANT_TAIL, SYSTEM_OPENER, Boto, sse

SONNET = "us.anthropic.claude-sonnet-4-6"
NOVA = "amazon.nova-micro-v1:0"
DOCUMENT = "0123456789" * 110  # 1,100 tokens on the fake engine
QUESTION = "Q?"
SYSTEM_END = SYSTEM_OPENER + len(DOCUMENT)  # the system block's end
LAST_BLOCK_END = SYSTEM_END + 1 + len("\n") + 1 + len("user\n") + len(QUESTION)  # where the implicit marker sits
PROMPT = LAST_BLOCK_END + ASSISTANT_TAIL


def app(**catalog: Any) -> TestClient:
    table = {"engines": {"default": {"kind": "fake"}}, "catalog": catalog}
    services = build_services(settings_from_table(table), engine_factory=lambda _: FakeEngine(),
                              profiles=ProfileStore(":memory:"))  # fmt: skip
    return TestClient(create_app(services))


@pytest.fixture
def client() -> Iterator[TestClient]:
    with app() as client:
        yield client


def converse(client: TestClient, model: str = SONNET, marked: bool = False, question: str = QUESTION) -> Any:
    system: list[dict[str, Any]] = [{"text": DOCUMENT}] + ([{"cachePoint": {"type": "default"}}] if marked else [])
    return Boto(client, "bedrock-runtime")("Converse", modelId=model, system=system,
                                           messages=[{"role": "user", "content": [{"text": question}]}],
                                           inferenceConfig={"maxTokens": 2})  # fmt: skip


def test_an_unmarked_prompt_reads_its_repeat_and_only_the_read_is_billed(client: TestClient) -> None:
    first, second = converse(client), converse(client)
    assert first.json()["usage"] == {"inputTokens": PROMPT, "outputTokens": 2, "totalTokens": PROMPT + 2}
    assert first.headers["x-cachepoint-cache"] == f"written:{LAST_BLOCK_END}:implicit:new"
    assert second.json()["usage"] == {
        "inputTokens": PROMPT - LAST_BLOCK_END, "outputTokens": 2, "totalTokens": PROMPT + 2,
        "cacheReadInputTokens": LAST_BLOCK_END, "cacheWriteInputTokens": 0,
    }  # fmt: skip
    assert second.headers["x-cachepoint-cache"] == f"hit:{LAST_BLOCK_END}:implicit:ram"


def test_implicit_and_explicit_entries_serve_each_other(client: TestClient) -> None:
    explicit = converse(client, marked=True, question="First?").json()["usage"]
    assert explicit["cacheWriteInputTokens"] == SYSTEM_END
    implicit = converse(client, question="Second?")  # another question: the system prefix is what matches
    assert implicit.json()["usage"]["cacheReadInputTokens"] == SYSTEM_END
    written = LAST_BLOCK_END - len(QUESTION) + len("Second?")  # its own marker writes further on
    assert implicit.headers["x-cachepoint-cache"] == f"written:{written}:implicit:prefix-changed"


def test_short_prompts_say_nothing_and_nova_caches_implicitly_too(client: TestClient) -> None:
    short = Boto(client, "bedrock-runtime")("Converse", modelId=SONNET, messages=[
        {"role": "user", "content": [{"text": "Hi"}]}])  # fmt: skip
    assert "x-cachepoint-cache" not in short.headers and "cacheReadInputTokens" not in short.json()["usage"]
    converse(client, NOVA)
    assert converse(client, NOVA).json()["usage"]["cacheReadInputTokens"] == LAST_BLOCK_END


def test_the_anthropic_api_and_invoke_model_report_implicit_reads(client: TestClient) -> None:
    body = {"model": "claude-sonnet-4-6", "max_tokens": 2, "system": DOCUMENT, "messages": [
        {"role": "user", "content": QUESTION}]}  # fmt: skip
    client.post("/v1/messages", json=body, headers=HEADERS)
    usage = client.post("/v1/messages", json=body, headers=HEADERS).json()["usage"]
    assert usage["cache_read_input_tokens"] == LAST_BLOCK_END and usage["cache_creation_input_tokens"] == 0
    streamed = sse(client.post("/v1/messages", json=body | {"stream": True}, headers=HEADERS).text)
    assert streamed[0][1]["message"]["usage"]["cache_read_input_tokens"] == LAST_BLOCK_END
    invoke = {k: v for k, v in body.items() if k != "model"} | {"anthropic_version": "bedrock-2023-05-31"}
    runtime = Boto(client, "bedrock-runtime")
    responses = [runtime("InvokeModel", modelId=SONNET, body=json.dumps(invoke).encode(), contentType="application/json")
                 for _ in range(2)]  # another account than /v1's key: its own first write
    response = responses[1]
    assert response.json()["usage"]["cache_read_input_tokens"] == LAST_BLOCK_END
    assert response.headers["x-amzn-bedrock-cache-read-input-token-count"] == str(LAST_BLOCK_END)


@pytest.mark.parametrize(
    "catalog",
    [{"implicit_caching": "off"}, {"models": {"anthropic.claude-sonnet-4-6": {"implicit_caching": "off"}}}],
    ids=["everywhere", "one-model"],
)
def test_switched_off_nothing_unmarked_is_cached(catalog: dict[str, Any]) -> None:
    with app(**catalog) as client:
        first, second = converse(client), converse(client)
    assert "x-cachepoint-cache" not in first.headers and "x-cachepoint-cache" not in second.headers
    assert "cacheReadInputTokens" not in second.json()["usage"]


def test_bad_switches_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\[catalog\] implicit_caching must be one of \['on', 'off'\], not 'sometimes'"):
        settings_from_table({"catalog": {"implicit_caching": "sometimes"}})
    with pytest.raises(ValueError, match="implicit_caching must be 'on' or 'off', not True"):
        build_services(Settings(engines={"default": EngineSettings("default", kind="fake")}, catalog_overrides={
            "models": {"amazon.nova-micro-v1:0": {"implicit_caching": True}}}), engine_factory=lambda _: FakeEngine())  # fmt: skip
