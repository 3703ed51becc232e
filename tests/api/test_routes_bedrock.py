"""Bedrock Runtime (POST /model/{modelId}/{operation}) in process: Converse, ConverseStream, InvokeModel,
InvokeModelWithResponseStream and CountTokens, with exact bodies, headers, frames and usage numbers.

Every prompt sits just above Claude Sonnet 4.5's 1,024-token minimum, so a first call writes the prefix and
a second identical call reads it; the usage numbers are sums of the lengths in `tests/api/wire.py`.
"""

from __future__ import annotations

import base64
import json
import re
from typing import TYPE_CHECKING, Any

import pytest

from cachepoint.engine.fake import FakeEngine
from tests.api.wire import (
    ASSISTANT_TAIL,
    BEDROCK_MESSAGE_ID,
    MILLISECONDS,
    NEXT_USER,
    SEPARATOR,
    SYSTEM_OPENER,
    USER_OPENER,
    Boto,
    assert_request_id,
    bedrock_error,
    event_stream,
    events,
    masked,
    sigv4_headers,
)

if TYPE_CHECKING:
    from httpx2 import Response  # what starlette's TestClient returns


SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"  # system profile: minimum 1,024 tokens, 5m and 1h TTLs
SONNET_BASE = "anthropic.claude-sonnet-4-5-20250929-v1:0"  # profile-only: not callable by its bare ID
DOCUMENT = "0123456789" * 110  # 1,100 bytes, so 1,100 tokens
QUESTION = "Q?"
CACHE_POINT = {"cachePoint": {"type": "default"}}
MAX_TOKENS = 8  # the fake engine would write 12; 8 stops it at max_tokens

# Converse: one user message [DOCUMENT, cachePoint, QUESTION]
CONVERSE: dict[str, Any] = {
    "messages": [{"role": "user", "content": [{"text": DOCUMENT}, CACHE_POINT, {"text": QUESTION}]}],
    "inferenceConfig": {"maxTokens": MAX_TOKENS},
}
WRITTEN = USER_OPENER + len(DOCUMENT)  # 1,106: the prefix up to the cache point
PROMPT = WRITTEN + SEPARATOR + len(QUESTION) + ASSISTANT_TAIL  # 1,123
UNCACHED = PROMPT - WRITTEN  # 17
ANSWER_DELTAS = [".", ".", ".", " delta", " point", " gamma", " gamma", " ok"]  # the fake engine's, for this prompt
ANSWER = "".join(ANSWER_DELTAS)

# InvokeModel: the Anthropic body, the document as a cached system block
INVOKE_BODY: dict[str, Any] = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": MAX_TOKENS,
    "system": [{"type": "text", "text": DOCUMENT, "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": [{"type": "text", "text": QUESTION}]}],
}
SYSTEM_WRITTEN = SYSTEM_OPENER + len(DOCUMENT)  # 1,108
INVOKE_PROMPT = SYSTEM_WRITTEN + NEXT_USER + len(QUESTION) + ASSISTANT_TAIL  # 1,131
INVOKE_UNCACHED = INVOKE_PROMPT - SYSTEM_WRITTEN  # 23
INVOKE_DELTAS = [".", " alpha", " beta", " point", " cache", ".", " beta", " point"]
INVOKE_ANSWER = "".join(INVOKE_DELTAS)


def prefill(evaluated: int, engine_cached: int) -> str:
    """The fake engine's x-cachepoint-prefill: only the token counts vary (its timings are zero)."""
    return f"evaluated={evaluated};prefill_ms=0.0;restore_ms=0.0;snapshot_ms=0.0;engine_cached={engine_cached}"


def cache_headers(response: Response) -> tuple[str, str]:
    """Checks the headers every successful non-streaming call carries; returns (cache report, prefill)."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert_request_id(response)
    assert response.headers["X-Amzn-Bedrock-Inference-Region"] == "us-east-1"
    return response.headers["x-cachepoint-cache"], response.headers["x-cachepoint-prefill"]


def invoke(runtime: Boto, operation: str, body: dict[str, Any], model_id: str = SONNET, **extra: Any) -> Response:
    raw = json.dumps(body).encode()
    return runtime(
        operation, modelId=model_id, body=raw, contentType="application/json", accept="application/json", **extra
    )


def chunks(raw: bytes) -> list[dict[str, Any]]:
    """InvokeModelWithResponseStream: every frame is a `chunk` whose `bytes` is one Anthropic event, base64."""
    decoded = []
    for event_type, payload in events(raw):
        assert event_type == "chunk" and list(payload) == ["bytes"]
        decoded.append(json.loads(base64.b64decode(payload["bytes"])))
    return decoded


def converse_usage(read: int, write: int) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "inputTokens": UNCACHED,
        "outputTokens": MAX_TOKENS,
        "totalTokens": PROMPT + MAX_TOKENS,
        "cacheReadInputTokens": read,
        "cacheWriteInputTokens": write,
    }
    if write:
        usage["cacheDetails"] = [{"ttl": "5m", "inputTokens": write}]
    return usage


def invoke_usage(read: int, write: int) -> dict[str, Any]:
    return {
        "input_tokens": INVOKE_UNCACHED,
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
        "output_tokens": MAX_TOKENS,
        "cache_creation": {"ephemeral_5m_input_tokens": write, "ephemeral_1h_input_tokens": 0},
    }


# -- Converse ---------------------------------------------------------------------------------------------


def test_converse_writes_the_prefix_then_reads_it(runtime: Boto) -> None:
    first = runtime("Converse", modelId=SONNET, **CONVERSE)
    second = runtime("Converse", modelId=SONNET, **CONVERSE)

    assert cache_headers(first) == (f"written:{WRITTEN}:5m:new", prefill(PROMPT, 0))
    assert cache_headers(second) == (f"hit:{WRITTEN}:5m:ram", prefill(UNCACHED, WRITTEN))  # only the tail is computed again
    bodies = [first.json(), second.json()]
    for body in bodies:
        masked(body["metrics"], "latencyMs", MILLISECONDS)
    expected = {
        "output": {"message": {"role": "assistant", "content": [{"text": ANSWER}]}},
        "stopReason": "max_tokens",
        "metrics": {"latencyMs": "<latencyMs>"},
    }
    assert bodies == [
        expected | {"usage": converse_usage(read=0, write=WRITTEN)},
        expected | {"usage": converse_usage(read=WRITTEN, write=0)},
    ]


def test_converse_one_hour_checkpoint_in_the_system_prompt(runtime: Boto) -> None:
    system = [{"text": DOCUMENT}, {"cachePoint": {"type": "default", "ttl": "1h"}}]
    request = {"system": system, "messages": [{"role": "user", "content": [{"text": QUESTION}]}]}
    first = runtime("Converse", modelId=SONNET, inferenceConfig={"maxTokens": 4}, **request)
    second = runtime("Converse", modelId=SONNET, inferenceConfig={"maxTokens": 4}, **request)

    assert cache_headers(first)[0] == f"written:{SYSTEM_WRITTEN}:1h:new"
    assert cache_headers(second)[0] == f"hit:{SYSTEM_WRITTEN}:1h:ram"
    total = INVOKE_PROMPT + 4
    assert first.json()["usage"] == {
        "inputTokens": INVOKE_UNCACHED,
        "outputTokens": 4,
        "totalTokens": total,
        "cacheReadInputTokens": 0,
        "cacheWriteInputTokens": SYSTEM_WRITTEN,
        "cacheDetails": [{"ttl": "1h", "inputTokens": SYSTEM_WRITTEN}],
    }
    assert second.json()["usage"] == {
        "inputTokens": INVOKE_UNCACHED,
        "outputTokens": 4,
        "totalTokens": total,
        "cacheReadInputTokens": SYSTEM_WRITTEN,
        "cacheWriteInputTokens": 0,
    }


def test_converse_without_a_checkpoint_has_no_cache_counters(runtime: Boto) -> None:
    response = runtime("Converse", modelId=SONNET, messages=[{"role": "user", "content": [{"text": QUESTION}]}])

    assert response.status_code == 200
    assert "x-cachepoint-cache" not in response.headers
    prompt = USER_OPENER + len(QUESTION) + ASSISTANT_TAIL
    assert response.json()["usage"] == {"inputTokens": prompt, "outputTokens": 12, "totalTokens": prompt + 12}
    assert response.json()["stopReason"] == "end_turn"


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        (
            {"messages": [{"role": "user", "content": [{"text": QUESTION}]}], "inferenceConfig": {"maxTokens": 0}},
            "1 validation error detected: Value '0' at 'inferenceConfig.maxTokens' failed to satisfy constraint: "
            "Member must have value greater than or equal to 1",
        ),
        (
            {"messages": [{"role": "assistant", "content": [{"text": QUESTION}]}]},
            "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
        ),
        (
            {"messages": [{"role": "user", "content": [CACHE_POINT, {"text": QUESTION}]}]},
            "There is nothing available to cache. Please remove the invalid cache point and try again.",
        ),
        (
            {"messages": [{"role": "user", "content": [{"text": " "}]}]},
            "The text field in the ContentBlock object at messages.0.content.0 is blank. "
            "Add text to the text field, and try again.",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"text": "a"}, {"cachePoint": {"type": "default", "ttl": "2h"}}]}
                ]
            },
            "1 validation error detected: Value '2h' at 'messages.0.content.1.cachePoint.ttl' failed to satisfy "
            "constraint: Member must satisfy enum value set: [5m, 1h]",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [part for i in range(5) for part in ({"text": f"b{i}"}, CACHE_POINT)]}
                ]
            },
            "The model returned the following errors: A maximum of 4 blocks with cache_control may be provided. Found 5.",
        ),
    ],
    ids=["max-tokens-zero", "assistant-first", "nothing-to-cache", "blank-text", "bad-ttl", "five-checkpoints"],
)
def test_converse_validation_errors(runtime: Boto, request_fields: dict[str, Any], message: str) -> None:
    response = runtime("Converse", modelId=SONNET, **request_fields)

    assert bedrock_error(response) == (400, "ValidationException", {"message": message})


@pytest.mark.parametrize(
    ("model_id", "message"),
    [
        ("nope", "The provided model identifier is invalid."),
        (
            SONNET_BASE,
            f"Invocation of model ID {SONNET_BASE} with on-demand throughput isn\u2019t supported. "
            "Retry your request with the ID or ARN of an inference profile that contains this model.",
        ),
        ("jp." + SONNET_BASE, "The provided model identifier is invalid."),  # jp. is not reachable from us-east-1
    ],
    ids=["unknown", "profile-only-model-by-bare-id", "profile-outside-its-source-regions"],
)
def test_converse_model_identifier_errors(runtime: Boto, model_id: str, message: str) -> None:
    response = runtime("Converse", modelId=model_id, messages=[{"role": "user", "content": [{"text": QUESTION}]}])

    assert bedrock_error(response) == (400, "ValidationException", {"message": message})


def test_converse_checkpoint_on_a_model_without_caching_is_access_denied(runtime: Boto) -> None:
    content = [{"text": QUESTION}, CACHE_POINT]
    response = runtime(
        "Converse", modelId="us.meta.llama3-3-70b-instruct-v1:0", messages=[{"role": "user", "content": content}]
    )

    assert bedrock_error(response) == (
        403,
        "AccessDeniedException",
        {"message": "You invoked an unsupported model or your request did not allow prompt caching."},
    )


def test_converse_engine_failure_is_a_model_error(runtime: Boto, fake_engine: FakeEngine) -> None:
    fake_engine.fail_next = RuntimeError("engine crashed")

    response = runtime("Converse", modelId=SONNET, **CONVERSE)

    assert bedrock_error(response) == (
        424,
        "ModelErrorException",
        {"message": "The model failed to process the request."},
    )


# -- ConverseStream ----------------------------------------------------------------------------------------


def converse_stream_events(response: Response) -> list[tuple[str, Any]]:
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.amazon.eventstream"
    assert_request_id(response)
    found = events(response.content)
    masked(found[-1][1]["metrics"], "latencyMs", MILLISECONDS)
    return found


def test_converse_stream_writes_then_reads_with_usage_in_metadata(runtime: Boto) -> None:
    responses = [runtime("ConverseStream", modelId=SONNET, **CONVERSE) for _ in range(2)]
    first, second = (converse_stream_events(r) for r in responses)
    assert [r.headers["x-cachepoint-cache"] for r in responses] == [f"written:{WRITTEN}:5m:new", f"hit:{WRITTEN}:5m:ram"]
    assert [r.headers["X-Amzn-Bedrock-Inference-Region"] for r in responses] == ["us-east-1", "us-east-1"]

    def expected(read: int, write: int) -> list[tuple[str, Any]]:
        return [
            ("messageStart", {"role": "assistant"}),
            *[("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text}}) for text in ANSWER_DELTAS],
            ("contentBlockStop", {"contentBlockIndex": 0}),
            ("messageStop", {"stopReason": "max_tokens"}),
            ("metadata", {"usage": converse_usage(read, write), "metrics": {"latencyMs": "<latencyMs>"}}),
        ]

    assert first == expected(read=0, write=WRITTEN)
    assert second == expected(read=WRITTEN, write=0)


def test_converse_stream_validation_error_comes_before_the_stream(runtime: Boto) -> None:
    response = runtime("ConverseStream", modelId=SONNET, messages=[{"role": "assistant", "content": [{"text": "x"}]}])

    assert bedrock_error(response) == (
        400,
        "ValidationException",
        {
            "message": "A conversation must start with a user message. Try again with a conversation that starts with a user message."
        },
    )


def test_converse_stream_engine_failure_is_an_exception_frame(runtime: Boto, fake_engine: FakeEngine) -> None:
    fake_engine.fail_next = RuntimeError("engine crashed")

    response = runtime("ConverseStream", modelId=SONNET, **CONVERSE)

    assert response.status_code == 200
    message = "The model failed to process the request."
    assert event_stream(response.content) == [
        (
            {":event-type": "messageStart", ":content-type": "application/json", ":message-type": "event"},
            {"role": "assistant"},
        ),
        (
            {
                ":exception-type": "modelStreamErrorException",
                ":content-type": "application/json",
                ":message-type": "exception",
            },
            {"message": message, "originalStatusCode": 500, "originalMessage": message},
        ),
    ]


# -- InvokeModel ---------------------------------------------------------------------------------------------


def token_headers(response: Response) -> dict[str, str]:
    names = ["Input", "Output", "Cache-Read-Input", "Cache-Write-Input"]
    assert re.fullmatch(MILLISECONDS, response.headers["X-Amzn-Bedrock-Invocation-Latency"])
    return {name: response.headers[f"X-Amzn-Bedrock-{name}-Token-Count"] for name in names}


def test_invoke_model_writes_then_reads_with_token_count_headers(runtime: Boto) -> None:
    first = invoke(runtime, "InvokeModel", INVOKE_BODY)
    second = invoke(runtime, "InvokeModel", INVOKE_BODY)

    assert cache_headers(first) == (f"written:{SYSTEM_WRITTEN}:5m:new", prefill(INVOKE_PROMPT, 0))
    assert cache_headers(second) == (f"hit:{SYSTEM_WRITTEN}:5m:ram", prefill(INVOKE_UNCACHED, SYSTEM_WRITTEN))
    assert token_headers(first) == {"Input": "23", "Output": "8", "Cache-Read-Input": "0", "Cache-Write-Input": "1108"}
    assert token_headers(second) == {"Input": "23", "Output": "8", "Cache-Read-Input": "1108", "Cache-Write-Input": "0"}
    bodies = [first.json(), second.json()]
    for body in bodies:
        masked(body, "id", BEDROCK_MESSAGE_ID)
    expected = {
        "id": "<id>",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": INVOKE_ANSWER}],
        "stop_reason": "max_tokens",
        "stop_sequence": None,
    }
    assert bodies == [
        expected | {"usage": invoke_usage(read=0, write=SYSTEM_WRITTEN)},
        expected | {"usage": invoke_usage(read=SYSTEM_WRITTEN, write=0)},
    ]


def test_invoke_model_below_the_minimum_caches_nothing_and_says_so(runtime: Boto) -> None:
    """Claude Haiku 4.5: a 4,096-token minimum; it offers the 1h TTL, so Bedrock adds the `cache_creation` object."""
    response = invoke(runtime, "InvokeModel", INVOKE_BODY, model_id="us.anthropic.claude-haiku-4-5-20251001-v1:0")

    assert cache_headers(response)[0] == f"skipped-below-minimum:{SYSTEM_WRITTEN}:5m"
    body = response.json()
    masked(body, "id", BEDROCK_MESSAGE_ID)
    assert body == {
        "id": "<id>",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5-20251001",
        "content": [{"type": "text", "text": INVOKE_ANSWER}],
        "stop_reason": "max_tokens",
        "stop_sequence": None,
        "usage": {
            "input_tokens": INVOKE_PROMPT,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": MAX_TOKENS,
        },
    }


def test_invoke_model_path_with_literal_colon_as_anthropic_bedrock_sends_it(runtime: Boto) -> None:
    """AnthropicBedrock and LiteLLM keep ':' literal in the model segment; boto3 sends %3A. Both are one model."""
    headers = sigv4_headers() | {"Content-Type": "application/json", "Accept": "application/json"}
    response = runtime.client.post(f"/model/{SONNET}/invoke", content=json.dumps(INVOKE_BODY), headers=headers)

    assert cache_headers(response)[0] == f"written:{SYSTEM_WRITTEN}:5m:new"
    assert invoke(runtime, "InvokeModel", INVOKE_BODY).headers["x-cachepoint-cache"] == f"hit:{SYSTEM_WRITTEN}:5m:ram"


@pytest.mark.parametrize(
    ("body", "model_id", "message"),
    [
        (
            {key: value for key, value in INVOKE_BODY.items() if key != "max_tokens"},
            SONNET,
            "Malformed input request: #: required key [max_tokens] not found, please reformat your input and try again.",
        ),
        (
            INVOKE_BODY | {"model": "claude-sonnet-4-5"},
            SONNET,
            "Malformed input request: #: extraneous key [model] is not permitted, please reformat your input and try again.",
        ),
        (
            INVOKE_BODY | {"cache_control": {"type": "ephemeral"}},
            SONNET,
            "cache_control: Extra inputs are not permitted",
        ),
        (
            INVOKE_BODY,
            "us.amazon.nova-pro-v1:0",
            "Malformed input request: Nova Pro takes its native body (messages, system, inferenceConfig), not anthropic's.",
        ),
        (
            INVOKE_BODY,
            "us.meta.llama3-3-70b-instruct-v1:0",
            "InvokeModel bodies are supported for Anthropic and Nova models; use Converse for Llama 3.3 70B Instruct.",
        ),
    ],
    ids=["missing-max-tokens", "extraneous-model", "top-level-cache-control", "anthropic-body-to-nova", "no-invoke-body"],
)
def test_invoke_model_validation_errors(runtime: Boto, body: dict[str, Any], model_id: str, message: str) -> None:
    response = invoke(runtime, "InvokeModel", body, model_id=model_id)

    assert bedrock_error(response) == (400, "ValidationException", {"message": message})


def test_invoke_model_body_that_is_not_json(runtime: Boto) -> None:
    response = runtime("InvokeModel", modelId=SONNET, body=b"{not json", contentType="application/json")

    assert bedrock_error(response) == (
        400,
        "ValidationException",
        {"message": "Malformed input request, please reformat your input and try again."},
    )


def test_invoke_model_echoes_the_performance_config_latency_header(runtime: Boto) -> None:
    """InvokeModelResponse models `X-Amzn-Bedrock-PerformanceConfig-Latency` as a response header, and
    wire-protocol.md §1.1 says cachepoint echoes it."""
    response = invoke(runtime, "InvokeModel", INVOKE_BODY, performanceConfigLatency="standard")

    assert response.status_code == 200
    assert response.headers.get("X-Amzn-Bedrock-PerformanceConfig-Latency") == "standard"


# -- InvokeModelWithResponseStream -------------------------------------------------------------------------------


def invoke_stream_chunks(response: Response) -> list[dict[str, Any]]:
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.amazon.eventstream"
    assert response.headers["X-Amzn-Bedrock-Content-Type"] == "application/json"
    assert_request_id(response)
    found = chunks(response.content)
    masked(found[0]["message"], "id", BEDROCK_MESSAGE_ID)
    metrics = found[-1]["amazon-bedrock-invocationMetrics"]
    masked(metrics, "invocationLatency", MILLISECONDS)
    masked(metrics, "firstByteLatency", MILLISECONDS)
    return found


def test_invoke_with_response_stream_writes_then_reads(runtime: Boto) -> None:
    responses = [invoke(runtime, "InvokeModelWithResponseStream", INVOKE_BODY) for _ in range(2)]
    first, second = (invoke_stream_chunks(r) for r in responses)
    cache = [r.headers["x-cachepoint-cache"] for r in responses]
    assert cache == [f"written:{SYSTEM_WRITTEN}:5m:new", f"hit:{SYSTEM_WRITTEN}:5m:ram"]

    def expected(read: int, write: int) -> list[dict[str, Any]]:
        start_usage = invoke_usage(read, write) | {"output_tokens": 0}
        message: dict[str, Any] = {
            "id": "<id>",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": start_usage,
        }
        metrics = {
            "inputTokenCount": INVOKE_UNCACHED,
            "outputTokenCount": MAX_TOKENS,
            "invocationLatency": "<invocationLatency>",
            "firstByteLatency": "<firstByteLatency>",
            "cacheReadInputTokenCount": read,
            "cacheWriteInputTokenCount": write,
        }
        return [
            {"type": "message_start", "message": message},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            *[
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}
                for text in INVOKE_DELTAS
            ],
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
                "usage": invoke_usage(read, write),
            },
            {"type": "message_stop", "amazon-bedrock-invocationMetrics": metrics},
        ]

    assert first == expected(read=0, write=SYSTEM_WRITTEN)
    assert second == expected(read=SYSTEM_WRITTEN, write=0)


def test_invoke_with_response_stream_validation_error_comes_before_the_stream(runtime: Boto) -> None:
    body = {key: value for key, value in INVOKE_BODY.items() if key != "anthropic_version"}

    response = invoke(runtime, "InvokeModelWithResponseStream", body)

    assert bedrock_error(response) == (
        400,
        "ValidationException",
        {
            "message": "Malformed input request: #: required key [anthropic_version] not found, please reformat your input and try again."
        },
    )


def test_invoke_with_response_stream_engine_failure_is_an_exception_frame(
    runtime: Boto, fake_engine: FakeEngine
) -> None:
    fake_engine.fail_next = RuntimeError("engine crashed")

    response = invoke(runtime, "InvokeModelWithResponseStream", INVOKE_BODY)

    frames = event_stream(response.content)
    assert [headers.get(":event-type") or headers[":exception-type"] for headers, _ in frames] == [
        "chunk",
        "chunk",
        "modelStreamErrorException",
    ]
    message = "The model failed to process the request."
    assert frames[-1] == (
        {
            ":exception-type": "modelStreamErrorException",
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        {"message": message, "originalStatusCode": 500, "originalMessage": message},
    )


# -- CountTokens -------------------------------------------------------------------------------------------------


def count_tokens(response: Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert_request_id(response)
    body: dict[str, Any] = response.json()
    return body


def test_count_tokens_for_a_converse_input_is_the_whole_prompt(runtime: Boto) -> None:
    converse_input = {"messages": CONVERSE["messages"]}

    response = runtime("CountTokens", modelId=SONNET_BASE, input={"converse": converse_input})

    assert count_tokens(response) == {"inputTokens": PROMPT}  # no cache split: read + write + uncached


def test_count_tokens_for_an_invoke_model_body(runtime: Boto) -> None:
    response = runtime(
        "CountTokens", modelId=SONNET_BASE, input={"invokeModel": {"body": json.dumps(INVOKE_BODY).encode()}}
    )

    assert count_tokens(response) == {"inputTokens": INVOKE_PROMPT}


def test_count_tokens_does_not_touch_the_cache(runtime: Boto) -> None:
    runtime("CountTokens", modelId=SONNET_BASE, input={"converse": {"messages": CONVERSE["messages"]}})

    assert runtime("Converse", modelId=SONNET, **CONVERSE).headers["x-cachepoint-cache"] == f"written:{WRITTEN}:5m:new"


@pytest.mark.parametrize(
    ("model_id", "body", "message"),
    [
        (
            SONNET_BASE,
            {},
            "1 validation error detected: Value null at 'input' failed to satisfy constraint: Member must not be null",
        ),
        (
            SONNET,
            {"input": {"converse": {"messages": CONVERSE["messages"]}}},
            "The provided model identifier is invalid.",
        ),
        (
            SONNET_BASE,
            {"input": {"invokeModel": {"body": "not base64!"}}},
            "Malformed input request, please reformat your input and try again.",
        ),
    ],
    ids=["missing-input", "profile-id", "bad-base64"],
)
def test_count_tokens_validation_errors(runtime: Boto, model_id: str, body: dict[str, Any], message: str) -> None:
    headers = sigv4_headers() | {"Content-Type": "application/json"}
    path = "/model/" + model_id.replace(":", "%3A") + "/count-tokens"

    response = runtime.client.post(path, content=json.dumps(body), headers=headers)

    assert bedrock_error(response) == (400, "ValidationException", {"message": message})


# -- the /model/ route itself ---------------------------------------------------------------------------------------


def test_unknown_operation_is_not_found(runtime: Boto) -> None:
    headers = sigv4_headers() | {"Content-Type": "application/json"}

    response = runtime.client.post(f"/model/{SONNET}/bogus", content=b"{}", headers=headers)

    assert bedrock_error(response) == (404, "ResourceNotFoundException", {"message": "Unknown operation: bogus"})


def test_credential_scope_in_an_unconfigured_region_is_refused(runtime: Boto) -> None:
    response = Boto(runtime.client, "bedrock-runtime", region="us-west-1")("Converse", modelId=SONNET, **CONVERSE)

    assert bedrock_error(response) == (
        403,
        "InvalidSignatureException",
        {"message": "Credential should be scoped to a valid region, not 'us-west-1'. "},
    )
    assert response.headers["connection"] == "close"


def test_bearer_token_is_accepted_in_dev_mode(runtime: Boto) -> None:
    headers = {"Authorization": "Bearer bedrock-api-key-test", "Content-Type": "application/json"}

    response = runtime.client.post(f"/model/{SONNET}/converse", content=json.dumps(CONVERSE), headers=headers)

    assert cache_headers(response)[0] == f"written:{WRITTEN}:5m:new"
