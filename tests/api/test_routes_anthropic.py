"""The Anthropic Messages API (POST /v1/messages, /v1/messages/count_tokens) in process: exact JSON and SSE
bodies, the `request-id` header, Anthropic's error shapes, and the cache numbers of a write then a read."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from starlette.testclient import TestClient

from cachepoint.engine.fake import FakeEngine
from tests.api.wire import (
    ACCESS_KEY,
    ANTHROPIC_MESSAGE_ID,
    ASSISTANT_TAIL,
    SEPARATOR,
    USER_OPENER,
    Boto,
    anthropic_error,
    assert_request_id,
    masked,
    sse,
)

if TYPE_CHECKING:
    from httpx2 import Response  # what starlette's TestClient returns


MODEL = "claude-sonnet-4-5"  # the undated alias of Claude Sonnet 4.5: minimum 1,024 tokens
DATED_MODEL = "claude-sonnet-4-5-20250929"
API_KEY = "sk-ant-test"
HEADERS = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}
DOCUMENT = "0123456789" * 110  # 1,100 tokens
QUESTION = "Q?"
MAX_TOKENS = 8

CACHED_DOCUMENT = {"type": "text", "text": DOCUMENT, "cache_control": {"type": "ephemeral"}}
MESSAGES = [{"role": "user", "content": [CACHED_DOCUMENT, {"type": "text", "text": QUESTION}]}]
REQUEST: dict[str, Any] = {"model": MODEL, "max_tokens": MAX_TOKENS, "messages": MESSAGES}
WRITTEN = USER_OPENER + len(DOCUMENT)  # 1,106
PROMPT = WRITTEN + SEPARATOR + len(QUESTION) + ASSISTANT_TAIL  # 1,123
UNCACHED = PROMPT - WRITTEN  # 17
ANSWER_DELTAS = [".", ".", ".", " delta", " point", " gamma", " gamma", " ok"]  # the fake engine's, for this prompt
ANSWER = "".join(ANSWER_DELTAS)
BAD_TTL_BLOCK = {"type": "text", "text": "a", "cache_control": {"type": "ephemeral", "ttl": "2h"}}


def messages(client: TestClient, body: dict[str, Any], headers: dict[str, str] = HEADERS) -> Response:
    return client.post("/v1/messages", json=body, headers=headers)


def usage(read: int, write: int, output: int = MAX_TOKENS, uncached: int = UNCACHED) -> dict[str, Any]:
    return {
        "input_tokens": uncached,
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
        "output_tokens": output,
        "cache_creation": {"ephemeral_5m_input_tokens": write, "ephemeral_1h_input_tokens": 0},
        "service_tier": "standard",  # the Anthropic API names the tier (Bedrock's body does not)
        "server_tool_use": None,
        "inference_geo": "not_available",  # Sonnet 4.5: before Claude 4.6's data residency
    }


def message_body(response: Response, cache: str) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert_request_id(response, "request-id")
    assert response.headers["x-cachepoint-cache"] == cache
    assert response.headers["X-Amzn-Bedrock-Inference-Region"] == "us-east-1"
    body: dict[str, Any] = response.json()
    masked(body, "id", ANTHROPIC_MESSAGE_ID)
    return body


def message(text: str | None, stop_reason: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "<id>",
        "type": "message",
        "role": "assistant",
        "model": DATED_MODEL,
        "content": [{"type": "text", "text": text}] if text is not None else [],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


# -- /v1/messages ---------------------------------------------------------------------------------------------------


def test_messages_writes_the_prefix_then_reads_it(client: TestClient) -> None:
    first = message_body(messages(client, REQUEST), f"written:{WRITTEN}:5m:new")
    second = message_body(messages(client, REQUEST), f"hit:{WRITTEN}:5m:ram")

    assert first == message(ANSWER, "max_tokens", usage(read=0, write=WRITTEN))
    assert second == message(ANSWER, "max_tokens", usage(read=WRITTEN, write=0))


def sse_events(response: Response) -> list[tuple[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert_request_id(response, "request-id")
    found = sse(response.text)
    masked(found[0][1]["message"], "id", ANTHROPIC_MESSAGE_ID)
    return found


def test_messages_stream_writes_then_reads(client: TestClient) -> None:
    responses = [messages(client, REQUEST | {"stream": True}) for _ in range(2)]
    first, second = (sse_events(r) for r in responses)
    assert [r.headers["x-cachepoint-cache"] for r in responses] == [f"written:{WRITTEN}:5m:new", f"hit:{WRITTEN}:5m:ram"]

    def expected(read: int, write: int) -> list[tuple[str, Any]]:
        start = message(None, "max_tokens", usage(read, write, output=0)) | {"stop_reason": None}
        return [
            ("message_start", {"type": "message_start", "message": start}),
            ("ping", {"type": "ping"}),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            *[
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}},
                )
                for t in ANSWER_DELTAS
            ],
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
                    "usage": usage(read, write),
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]

    assert first == expected(read=0, write=WRITTEN)
    assert second == expected(read=WRITTEN, write=0)


def test_top_level_cache_control_caches_the_last_block(client: TestClient) -> None:
    body = REQUEST | {"cache_control": {"type": "ephemeral"}, "messages": [{"role": "user", "content": DOCUMENT}]}
    uncached = ASSISTANT_TAIL  # the checkpoint closes the only block: only the assistant opener is left

    first = message_body(messages(client, body), f"written:{WRITTEN}:5m:new")
    second = message_body(messages(client, body), f"hit:{WRITTEN}:5m:ram")

    assert first["usage"] == usage(read=0, write=WRITTEN, uncached=uncached)
    assert second["usage"] == usage(read=WRITTEN, write=0, uncached=uncached)


def test_max_tokens_zero_prewarms_the_cache(client: TestClient) -> None:
    prewarm = message_body(messages(client, REQUEST | {"max_tokens": 0}), f"written:{WRITTEN}:5m:new")
    answered = message_body(messages(client, REQUEST), f"hit:{WRITTEN}:5m:ram")

    assert prewarm == message(None, "max_tokens", usage(read=0, write=WRITTEN, output=0))
    assert answered == message(ANSWER, "max_tokens", usage(read=WRITTEN, write=0))


def test_a_prefix_written_through_converse_is_read_here_with_the_same_key(client: TestClient) -> None:
    """One cache for both dialects: same key (so same account), same Region, same base model."""
    converse = Boto(client, "bedrock-runtime")(
        "Converse",
        modelId="us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        messages=[
            {"role": "user", "content": [{"text": DOCUMENT}, {"cachePoint": {"type": "default"}}, {"text": QUESTION}]}
        ],
        inferenceConfig={"maxTokens": MAX_TOKENS},
    )
    assert converse.headers["x-cachepoint-cache"] == f"written:{WRITTEN}:5m:new"

    response = messages(client, REQUEST, HEADERS | {"x-api-key": ACCESS_KEY})

    body = message_body(response, f"hit:{WRITTEN}:5m:ram")
    assert body == message(ANSWER, "max_tokens", usage(read=WRITTEN, write=0))
    assert converse.json()["output"]["message"]["content"] == [{"text": ANSWER}]


def test_bearer_authorization_and_the_beta_query_are_accepted(client: TestClient) -> None:
    """The 2.x SDK sends `Authorization: Bearer`; older SDKs append `?beta=true`."""
    headers = {"authorization": f"Bearer {API_KEY}", "anthropic-version": "2023-06-01", "anthropic-beta": "x"}

    response = client.post("/v1/messages?beta=true", json=REQUEST, headers=headers)

    assert message_body(response, f"written:{WRITTEN}:5m:new") == message(ANSWER, "max_tokens", usage(0, WRITTEN))


@pytest.mark.parametrize(
    ("body", "message_text"),
    [
        ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}, "max_tokens: Field required"),
        ({"model": MODEL, "max_tokens": 5, "messages": []}, "messages: at least one message is required"),
        (
            {"model": MODEL, "max_tokens": 5, "messages": [{"role": "assistant", "content": "hi"}]},
            'messages: first message must use the "user" role',
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 5,
                "messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}],
            },
            "messages: text content blocks must be non-empty",
        ),
        (
            {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": [BAD_TTL_BLOCK]}]},
            "messages.0.content.0.cache_control.ttl: Input should be '5m' or '1h'",
        ),
        (
            REQUEST | {"max_tokens": 0, "stream": True},
            "max_tokens: pre-warming with max_tokens 0 is not available with stream: true",
        ),
    ],
    ids=["missing-max-tokens", "no-messages", "assistant-first", "empty-text", "bad-ttl", "stream-prewarm"],
)
def test_messages_validation_errors(client: TestClient, body: dict[str, Any], message_text: str) -> None:
    response = messages(client, body)

    assert anthropic_error(response) == (
        400,
        {"type": "error", "error": {"type": "invalid_request_error", "message": message_text}},
    )


def test_messages_unknown_model_is_not_found(client: TestClient) -> None:
    response = messages(client, REQUEST | {"model": "claude-nope"})

    assert anthropic_error(response) == (
        404,
        {"type": "error", "error": {"type": "not_found_error", "message": "model: claude-nope"}},
    )


def test_messages_engine_failure_is_an_api_error(client: TestClient, fake_engine: FakeEngine) -> None:
    fake_engine.fail_next = RuntimeError("engine crashed")

    response = messages(client, REQUEST)

    assert anthropic_error(response) == (
        500,
        {"type": "error", "error": {"type": "api_error", "message": "The model failed to process the request."}},
    )


def test_messages_stream_engine_failure_is_an_error_event(client: TestClient, fake_engine: FakeEngine) -> None:
    fake_engine.fail_next = RuntimeError("engine crashed")

    found = sse_events(messages(client, REQUEST | {"stream": True}))

    assert [name for name, _ in found] == ["message_start", "ping", "content_block_start", "error"]
    assert found[-1][1] == {
        "type": "error",
        "error": {"type": "api_error", "message": "The model failed to process the request."},
    }


# -- /v1/messages/count_tokens ----------------------------------------------------------------------------------------


def test_count_tokens_counts_the_whole_prompt(client: TestClient) -> None:
    response = client.post("/v1/messages/count_tokens", json={"model": MODEL, "messages": MESSAGES}, headers=HEADERS)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"input_tokens": PROMPT}


def test_count_tokens_response_carries_a_request_id(client: TestClient) -> None:
    """Every Anthropic API response has a `request-id` header (/v1/messages and this route's errors do)."""
    response = client.post("/v1/messages/count_tokens", json={"model": MODEL, "messages": MESSAGES}, headers=HEADERS)

    assert response.status_code == 200
    assert_request_id(response, "request-id")


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"model": MODEL}, 400, {"type": "invalid_request_error", "message": "messages: Field required"}),
        (
            {"model": MODEL, "messages": []},
            400,
            {"type": "invalid_request_error", "message": "messages: at least one message is required"},
        ),
        (
            {"model": "claude-nope", "messages": MESSAGES},
            404,
            {"type": "not_found_error", "message": "model: claude-nope"},
        ),
    ],
    ids=["missing-messages", "no-messages", "unknown-model"],
)
def test_count_tokens_errors(client: TestClient, body: dict[str, Any], status: int, error: dict[str, str]) -> None:
    response = client.post("/v1/messages/count_tokens", json=body, headers=HEADERS)

    assert anthropic_error(response) == (status, {"type": "error", "error": error})


def test_consecutive_turns_of_one_role_are_one_turn_as_the_anthropic_api_documents(client: TestClient) -> None:
    """ "Consecutive user or assistant turns in your request will be combined into a single turn." """
    split = [{"role": "user", "content": [{"type": "text", "text": "first half."}]},
             {"role": "user", "content": [{"type": "text", "text": "second half."}]}]  # fmt: skip
    joined = [{"role": "user", "content": [{"type": "text", "text": "first half."}, {"type": "text", "text": "second half."}]}]
    bodies = [REQUEST | {"messages": messages, "system": "s"} for messages in (split, joined)]
    answers = [messages(client, body) for body in bodies]
    assert [a.status_code for a in answers] == [200, 200], answers[0].text
    assert answers[0].json()["usage"] == answers[1].json()["usage"] and answers[0].json()["content"] == answers[1].json()["content"]
    counted = [client.post("/v1/messages/count_tokens", json={"model": MODEL, "messages": m}, headers=HEADERS).json()
               for m in (split, joined)]  # fmt: skip
    assert counted[0] == counted[1]


def test_cache_control_inside_a_tool_result_marks_the_tool_result(client: TestClient) -> None:
    """Agent loops put their checkpoint on the text inside the last tool result; it was once dropped silently."""
    result = {"type": "tool_result", "tool_use_id": "t1",
              "content": [{"type": "text", "text": "0123456789" * 110, "cache_control": {"type": "ephemeral"}}]}  # fmt: skip
    conversation = [
        {"role": "user", "content": "Look it up."},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "lookup", "input": {}}]},
        {"role": "user", "content": [result]},
    ]
    body = REQUEST | {"messages": conversation, "tools": [{"name": "lookup", "input_schema": {"type": "object"}}]}
    first, second = messages(client, body), messages(client, body)
    written = first.json()["usage"]["cache_creation_input_tokens"]
    assert written > 1100 and first.headers["x-cachepoint-cache"] == f"written:{written}:5m:new"
    assert second.json()["usage"]["cache_read_input_tokens"] == written


def test_tool_choice_thinking_and_images_invalidate_the_messages_part_only(client: TestClient) -> None:
    """Anthropic's documented rules: these change the messages part's cache, not tools' or system's, even though
    the rendered tokens of the cached prefix are the same; each miss names what changed."""
    system = [{"type": "text", "text": "S" * 1100, "cache_control": {"type": "ephemeral"}}]
    tools = [{"name": "lookup", "input_schema": {"type": "object"}}]
    base = REQUEST | {"system": system, "tools": tools}

    def cache(**extra: Any) -> list[str]:
        response = messages(client, base | extra)
        assert response.status_code == 200, response.text
        return [part.split(":")[0] + ":" + part.split(":")[-1] for part in response.headers["x-cachepoint-cache"].split(",")]

    assert cache() == ["written:new", "written:new"]
    assert cache() == ["hit:ram", "hit:ram"]
    assert cache(tool_choice={"type": "any"}) == ["hit:ram", "written:tool-choice-changed"]
    assert cache(tool_choice={"type": "any"}) == ["hit:ram", "hit:ram"]
    thinking = {"type": "enabled", "budget_tokens": 1024}
    assert cache(tool_choice={"type": "any"}, thinking=thinking) == ["hit:ram", "written:thinking-changed"]
