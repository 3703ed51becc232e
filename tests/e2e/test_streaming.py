"""Streaming and the Anthropic Messages API with the real clients: boto3, anthropic, AnthropicBedrock."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
from botocore.exceptions import EventStreamError

from cachepoint.bootstrap import build_services
from cachepoint.engine.fake import FakeEngine
from cachepoint.routing.profiles import ProfileStore
from cachepoint.types import RegionId
from cachepoint.settings import EngineSettings, Settings
from tests.e2e.test_caching import CP, SONNET, document
from tests.live import LiveServer, serve


def stream_events(response: dict[str, Any]) -> list[tuple[float, dict[str, Any]]]:
    return [(time.perf_counter(), event) for event in response["stream"]]


def converse_stream(
    runtime: Any, content: list[dict[str, Any]], max_tokens: int = 8
) -> list[tuple[float, dict[str, Any]]]:
    return stream_events(
        runtime.converse_stream(
            modelId=SONNET,
            messages=[{"role": "user", "content": content}],
            inferenceConfig={"maxTokens": max_tokens, "temperature": 0},
        )
    )


def test_converse_stream_order_and_incremental_deltas(runtime: Any) -> None:
    timed = converse_stream(runtime, [{"text": "Write a long story about a lighthouse keeper."}], max_tokens=64)
    kinds = [next(iter(event)) for _, event in timed]
    assert kinds[0] == "messageStart" and kinds[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    deltas = [t for (t, event) in timed if "contentBlockDelta" in event]
    assert len(deltas) > 5
    assert timed[-1][0] - deltas[0] > 0.05  # the first delta arrived well before generation ended
    metadata = timed[-1][1]["metadata"]
    assert metadata["usage"]["outputTokens"] == 64 and metadata["metrics"]["latencyMs"] > 0


def test_stream_usage_with_cache_fields_equals_the_non_stream_usage(runtime: Any) -> None:
    content = [{"text": document("stream")}, CP, {"text": "Q?"}]
    written = runtime.converse(
        modelId=SONNET,
        messages=[{"role": "user", "content": content}],
        inferenceConfig={"maxTokens": 8, "temperature": 0},
    )["usage"]["cacheWriteInputTokens"]
    streamed = converse_stream(runtime, content)
    usage = streamed[-1][1]["metadata"]["usage"]
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for _, e in streamed if "contentBlockDelta" in e)
    again = runtime.converse(
        modelId=SONNET,
        messages=[{"role": "user", "content": content}],
        inferenceConfig={"maxTokens": 8, "temperature": 0},
    )
    assert usage["cacheReadInputTokens"] == written and usage["cacheWriteInputTokens"] == 0
    assert usage == again["usage"]
    assert text == again["output"]["message"]["content"][0]["text"]


def test_invoke_with_response_stream_chunks(runtime: Any) -> None:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 8,
        "temperature": 0,
        "system": [{"type": "text", "text": document("invstream"), "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Q?"}],
    }

    def chunks() -> list[dict[str, Any]]:
        response = runtime.invoke_model_with_response_stream(modelId=SONNET, body=json.dumps(body))
        assert response["contentType"] == "application/json"
        return [json.loads(e["chunk"]["bytes"]) for e in response["body"]]

    first, second = chunks(), chunks()
    assert [c["type"] for c in first][:2] == ["message_start", "content_block_start"]
    assert [c["type"] for c in first][-3:] == ["content_block_stop", "message_delta", "message_stop"]
    written = first[0]["message"]["usage"]["cache_creation_input_tokens"]
    assert written >= 1024 and first[0]["message"]["usage"]["cache_read_input_tokens"] == 0
    assert second[0]["message"]["usage"]["cache_read_input_tokens"] == written
    metrics = second[-1]["amazon-bedrock-invocationMetrics"]
    assert metrics["cacheReadInputTokenCount"] == written and metrics["cacheWriteInputTokenCount"] == 0
    assert metrics["outputTokenCount"] == second[-2]["usage"]["output_tokens"]
    assert metrics["inputTokenCount"] == second[0]["message"]["usage"]["input_tokens"]


def test_errors_before_the_stream_are_plain_http_errors(runtime: Any) -> None:
    with pytest.raises(runtime.exceptions.ValidationException):
        runtime.converse_stream(modelId="anthropic.nope-v1:0", messages=[{"role": "user", "content": [{"text": "x"}]}])


@pytest.fixture(scope="module")
def anthropic_client(live: LiveServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=live.url, api_key="sk-test-alice", max_retries=0)


def test_anthropic_messages_create_write_then_read(anthropic_client: anthropic.Anthropic) -> None:
    def create(question: str) -> Any:
        return anthropic_client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=8,
            system=[{"type": "text", "text": document("sdk"), "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
            messages=[{"role": "user", "content": question}],
        )

    first, second = create("Q1?"), create("Q2, longer?")
    assert first.usage.cache_read_input_tokens == 0 and first.usage.cache_creation_input_tokens >= 1024
    assert first.usage.cache_creation.ephemeral_1h_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens == 0 and second.id.startswith("msg_")
    assert second.model == "claude-sonnet-4-6" and second.usage.service_tier == "standard"


def test_anthropic_consecutive_user_turns_read_the_prefix_as_one_turn(anthropic_client: anthropic.Anthropic) -> None:
    system: Any = [{"type": "text", "text": document("turns"), "cache_control": {"type": "ephemeral"}}]
    first = anthropic_client.messages.create(model="claude-sonnet-4-6", max_tokens=4, system=system,
                                             messages=[{"role": "user", "content": "Part one."}])  # fmt: skip
    merged = anthropic_client.messages.create(
        model="claude-sonnet-4-6", max_tokens=4, system=system,
        messages=[{"role": "user", "content": "Part one."}, {"role": "user", "content": "Part two."}],
    )  # fmt: skip
    assert merged.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens > 1024


def test_anthropic_messages_stream_with_cache_control(anthropic_client: anthropic.Anthropic) -> None:
    kwargs: dict[str, Any] = dict(
        model="claude-sonnet-4-6",
        max_tokens=32,
        extra_body={"temperature": 0},
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": document("sdkstream"), "cache_control": {"type": "ephemeral"}},
                    {"type": "text", "text": "Q?"},
                ],
            }
        ],
    )
    with anthropic_client.messages.stream(**kwargs) as stream:
        pieces = list(stream.text_stream)
        first = stream.get_final_message()
    with anthropic_client.messages.stream(**kwargs) as stream:
        second = stream.get_final_message()
    assert len(pieces) > 1 and "".join(pieces) == first.content[0].text
    assert first.usage.cache_creation_input_tokens >= 1024
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.content[0].text == first.content[0].text


def test_anthropic_count_tokens_prewarm_and_errors(anthropic_client: anthropic.Anthropic) -> None:
    system = [{"type": "text", "text": document("prewarm"), "cache_control": {"type": "ephemeral"}}]
    messages = [{"role": "user", "content": "Q?"}]
    count = anthropic_client.messages.count_tokens(model="claude-sonnet-4-6", system=system, messages=messages)  # type: ignore[arg-type]
    warm = anthropic_client.messages.create(model="claude-sonnet-4-6", max_tokens=0, system=system, messages=messages)  # type: ignore[arg-type]
    assert warm.content == [] and warm.stop_reason == "max_tokens" and warm.usage.output_tokens == 0
    assert warm.usage.cache_creation_input_tokens + warm.usage.input_tokens == count.input_tokens
    assert warm.usage.cache_creation.ephemeral_5m_input_tokens == warm.usage.cache_creation_input_tokens
    with pytest.raises(anthropic.NotFoundError):
        anthropic_client.messages.create(model="claude-nope", max_tokens=5, messages=messages)  # type: ignore[arg-type]
    with pytest.raises(anthropic.BadRequestError) as info:
        anthropic_client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=[])
    assert info.value.body["error"]["message"] == "messages: at least one message is required"  # type: ignore[index]
    five = [{"type": "text", "text": f"b{i}", "cache_control": {"type": "ephemeral"}} for i in range(5)]
    with pytest.raises(
        anthropic.BadRequestError, match="A maximum of 4 blocks with cache_control may be provided. Found 5."
    ):
        anthropic_client.messages.create(
            model="claude-sonnet-4-6", max_tokens=5, messages=[{"role": "user", "content": five}]
        )  # type: ignore[list-item]


def test_anthropic_automatic_caching(anthropic_client: anthropic.Anthropic) -> None:
    def create() -> Any:
        return anthropic_client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=4,
            cache_control={"type": "ephemeral"},
            messages=[{"role": "user", "content": document("auto")}],
        )

    assert create().usage.cache_creation_input_tokens >= 1024
    assert create().usage.cache_read_input_tokens >= 1024


def test_anthropic_bedrock_client_on_the_bedrock_paths(live: LiveServer) -> None:
    client = anthropic.AnthropicBedrock(
        base_url=live.url,
        aws_region="us-east-1",
        aws_access_key="AKIDBEDROCKSDK",
        aws_secret_key="secret",
        max_retries=0,
    )
    system = [{"type": "text", "text": document("bedrocksdk"), "cache_control": {"type": "ephemeral"}}]
    first = client.messages.create(
        model=SONNET, max_tokens=8, system=system, messages=[{"role": "user", "content": "Q?"}]
    )  # type: ignore[arg-type]
    with client.messages.stream(
        model=SONNET, max_tokens=8, system=system, messages=[{"role": "user", "content": "Q?"}]
    ) as stream:  # type: ignore[arg-type]
        second = stream.get_final_message()
    assert first.usage.cache_creation_input_tokens >= 1024
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens


def test_a_client_that_disconnects_frees_the_engine(live: LiveServer, runtime: Any) -> None:
    worker = live.services.inference.pools["default"].worker(RegionId("us-east-1"))
    body = {
        "messages": [{"role": "user", "content": [{"text": "Tell me an endless story."}]}],
        "inferenceConfig": {"maxTokens": 3000},
    }
    with httpx.stream("POST", f"{live.url}/model/{SONNET}/converse-stream", json=body, timeout=30) as response:
        assert next(response.iter_bytes())  # the stream is running
    deadline = time.monotonic() + 5
    while worker.num_jobs and time.monotonic() < deadline:
        time.sleep(0.02)
    assert worker.num_jobs == 0, "generation kept running after the client left"
    started = time.monotonic()
    reply = runtime.converse(
        modelId=SONNET, messages=[{"role": "user", "content": [{"text": "Hi"}]}], inferenceConfig={"maxTokens": 2}
    )
    assert reply["usage"]["outputTokens"] == 2 and time.monotonic() - started < 5


@pytest.fixture(scope="module")
def failing() -> Iterator[tuple[LiveServer, FakeEngine]]:
    engine = FakeEngine()
    settings = Settings(engines={"default": EngineSettings("default", kind="fake")})
    services = build_services(settings, engine_factory=lambda _: engine, profiles=ProfileStore(":memory:"))
    with serve(services) as server:
        yield server, engine


def test_engine_failure_mid_stream_is_an_exception_frame_and_the_next_call_works(
    failing: tuple[LiveServer, FakeEngine], client_for: Any
) -> None:
    server, engine = failing
    import boto3
    from botocore.config import Config

    runtime = boto3.client(
        "bedrock-runtime",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="AKIDF",
        aws_secret_access_key="x",
        config=Config(retries={"total_max_attempts": 1}),
    )
    engine.fail_next = RuntimeError("injected engine fault")
    response = runtime.converse_stream(modelId=SONNET, messages=[{"role": "user", "content": [{"text": "x"}]}])
    with pytest.raises(EventStreamError) as info:
        list(response["stream"])
    assert info.value.response["Error"]["Code"] == "modelStreamErrorException"
    engine.fail_next = RuntimeError("injected engine fault")
    with pytest.raises(runtime.exceptions.ModelErrorException):
        runtime.converse(modelId=SONNET, messages=[{"role": "user", "content": [{"text": "x"}]}])
    ok = runtime.converse(modelId=SONNET, messages=[{"role": "user", "content": [{"text": "x"}]}])
    assert ok["usage"]["outputTokens"] > 0


def test_sse_wire_format_has_event_lines(live: LiveServer) -> None:
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 3,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    raw = httpx.post(f"{live.url}/v1/messages", json=body, headers={"x-api-key": "k"}, timeout=60).text
    blocks = [b for b in raw.split("\n\n") if b]
    assert all(b.startswith("event: ") and "\ndata: " in b for b in blocks)
    assert [b.split("\n")[0][7:] for b in blocks][:3] == ["message_start", "ping", "content_block_start"]


def test_anthropic_cache_control_inside_a_tool_result(anthropic_client: anthropic.Anthropic) -> None:
    result: Any = {"type": "tool_result", "tool_use_id": "toolu_1",
                   "content": [{"type": "text", "text": document("tool"), "cache_control": {"type": "ephemeral"}}]}  # fmt: skip
    conversation: Any = [
        {"role": "user", "content": "Look it up."},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}]},
        {"role": "user", "content": [result]},
    ]
    tools: Any = [{"name": "lookup", "input_schema": {"type": "object"}}]
    first, second = (anthropic_client.messages.create(model="claude-sonnet-4-6", max_tokens=4, tools=tools,
                                                      messages=conversation) for _ in range(2))  # fmt: skip
    assert first.usage.cache_creation_input_tokens > 1024
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens


def test_anthropic_tool_choice_change_invalidates_only_the_messages_part(anthropic_client: anthropic.Anthropic) -> None:
    system: Any = [{"type": "text", "text": document("choice-system"), "cache_control": {"type": "ephemeral"}}]
    content: Any = [{"type": "text", "text": document("choice-messages"), "cache_control": {"type": "ephemeral"}}]
    tools: Any = [{"name": "lookup", "input_schema": {"type": "object"}}]

    def create(**extra: Any) -> Any:
        return anthropic_client.messages.with_raw_response.create(
            model="claude-sonnet-4-6", max_tokens=4, system=system, tools=tools,
            messages=[{"role": "user", "content": content}], **extra)  # fmt: skip

    create()
    changed = create(tool_choice={"type": "any"})
    system_report, messages_report = changed.headers["x-cachepoint-cache"].split(",")
    assert system_report.startswith("hit:") and messages_report.endswith(":tool-choice-changed")
    assert changed.parse().usage.cache_read_input_tokens > 1024  # tools and system still read


def test_bedrock_runtimes_messages_endpoint_with_the_anthropic_sdk(live: LiveServer) -> None:
    """Bedrock Runtime's own Messages API (base URL `…/anthropic`), as the SDK's Bedrock client calls it with a
    Bedrock API key: a profile ID, the prefix written then read, streamed too."""
    client = anthropic.AnthropicBedrockMantle(base_url=f"{live.url}/anthropic", api_key="bedrock-key", max_retries=0)
    system: Any = [{"type": "text", "text": document("mantle"), "cache_control": {"type": "ephemeral"}}]

    def create(question: str) -> Any:
        return client.messages.create(model=SONNET, max_tokens=4, system=system,
                                      messages=[{"role": "user", "content": question}])  # fmt: skip

    first, second = create("Q1?"), create("Q2?")
    assert first.usage.cache_creation_input_tokens > 1024 and first.id.startswith("msg_bdrk_")
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    with client.messages.stream(model=SONNET, max_tokens=4, system=system,
                                messages=[{"role": "user", "content": "Q3?"}]) as stream:  # fmt: skip
        final = stream.get_final_message()
    assert final.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    counted = client.messages.count_tokens(model=SONNET, system=system, messages=[{"role": "user", "content": "Q1?"}])
    assert counted.input_tokens == first.usage.input_tokens + first.usage.cache_creation_input_tokens
