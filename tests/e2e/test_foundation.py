"""boto3 against the real server on the real model: the three operations and every input error."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from tests.live import LiveServer

SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
HAIKU35 = "anthropic.claude-3-5-haiku-20241022-v1:0"
USER = [{"role": "user", "content": [{"text": "Name three colours."}]}]


def anthropic_body(**extra: Any) -> bytes:
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 12,
        "temperature": 0,
        "messages": [{"role": "user", "content": "Name three colours."}],
    } | extra
    return json.dumps(body).encode()


def test_converse_answers_with_usage_and_metrics(runtime: Any) -> None:
    response = runtime.converse(modelId=SONNET, messages=USER, inferenceConfig={"maxTokens": 16, "temperature": 0})
    text = response["output"]["message"]["content"][0]["text"]
    usage = response["usage"]
    assert text and response["output"]["message"]["role"] == "assistant"
    assert response["stopReason"] in ("end_turn", "max_tokens")
    assert 0 < usage["outputTokens"] <= 16 and usage["inputTokens"] > 5
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    assert "cacheReadInputTokens" not in usage  # no checkpoint, no cache fields
    assert response["metrics"]["latencyMs"] > 0
    assert response["ResponseMetadata"]["RequestId"]


def test_temperature_zero_is_deterministic(runtime: Any) -> None:
    def once() -> str:
        r = runtime.converse(modelId=SONNET, messages=USER, inferenceConfig={"maxTokens": 24, "temperature": 0})
        return str(r["output"]["message"]["content"][0]["text"])

    assert once() == once()


def test_max_tokens_and_stop_sequences(runtime: Any) -> None:
    r = runtime.converse(modelId=SONNET, messages=USER, inferenceConfig={"maxTokens": 3, "temperature": 0})
    assert r["stopReason"] == "max_tokens" and r["usage"]["outputTokens"] == 3
    full = runtime.converse(modelId=SONNET, messages=USER, inferenceConfig={"maxTokens": 24, "temperature": 0})
    text = full["output"]["message"]["content"][0]["text"]
    stop = text.split()[1]
    cut = runtime.converse(
        modelId=SONNET, messages=USER, inferenceConfig={"maxTokens": 24, "temperature": 0, "stopSequences": [stop]}
    )
    assert cut["stopReason"] == "stop_sequence"
    assert cut["output"]["message"]["content"][0]["text"] == text[: text.index(stop)]


def test_invoke_model_with_anthropic_body_and_token_headers(runtime: Any) -> None:
    response = runtime.invoke_model(modelId=SONNET, body=anthropic_body())
    body = json.loads(response["body"].read())
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert body["type"] == "message" and body["id"].startswith("msg_bdrk_")
    assert body["model"] == "claude-sonnet-4-5-20250929"
    assert body["usage"]["input_tokens"] == int(headers["x-amzn-bedrock-input-token-count"])
    assert body["usage"]["output_tokens"] == int(headers["x-amzn-bedrock-output-token-count"])
    assert body["usage"]["cache_creation"] == {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}
    assert headers["x-amzn-bedrock-cache-read-input-token-count"] == "0"


def test_same_prompt_same_token_count_across_operations(runtime: Any) -> None:
    converse = runtime.converse(modelId=SONNET, messages=USER, inferenceConfig={"maxTokens": 1})
    via_converse = runtime.count_tokens(
        modelId="anthropic.claude-sonnet-4-5-20250929-v1:0", input={"converse": {"messages": USER}}
    )
    via_invoke = runtime.count_tokens(
        modelId="anthropic.claude-sonnet-4-5-20250929-v1:0", input={"invokeModel": {"body": anthropic_body()}}
    )
    assert via_converse["inputTokens"] == via_invoke["inputTokens"] == converse["usage"]["inputTokens"]


def test_arn_model_ids_route_on_the_raw_path(runtime: Any, live: LiveServer) -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/" + SONNET
    assert runtime.converse(modelId=arn, messages=USER, inferenceConfig={"maxTokens": 1})["usage"]["outputTokens"] == 1
    # AnthropicBedrock keeps ':' literal and encodes only '/'
    raw = httpx.post(f"{live.url}/model/{arn.replace('/', '%2F')}/invoke", content=anthropic_body(max_tokens=1))
    assert raw.status_code == 200, raw.text


def error_of(call: Any) -> tuple[str, str, int]:
    with pytest.raises(Exception) as info:
        call()
    error = info.value.response
    return error["Error"]["Code"], error["Error"]["Message"], error["ResponseMetadata"]["HTTPStatusCode"]


def test_unknown_model(runtime: Any) -> None:
    code, message, status = error_of(lambda: runtime.converse(modelId="anthropic.claude-9", messages=USER))
    assert (code, message, status) == ("ValidationException", "The provided model identifier is invalid.", 400)
    assert isinstance(
        _raised(lambda: runtime.converse(modelId="nope.nope", messages=USER)), runtime.exceptions.ValidationException
    )


def _raised(call: Any) -> BaseException:
    try:
        call()
    except Exception as error:  # noqa: BLE001 - the test inspects the class
        return error
    raise AssertionError("expected an error")


@pytest.mark.parametrize(
    ("messages", "config", "message"),
    [
        (
            [],
            {},
            "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
        ),
        (
            [{"role": "assistant", "content": [{"text": "hi"}]}],
            {},
            "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
        ),
        (
            USER + USER,
            {},
            "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.",
        ),
        (
            USER,
            {"maxTokens": 0},
            "1 validation error detected: Value '0' at 'inferenceConfig.maxTokens' failed to satisfy constraint: Member must have value greater than or equal to 1",
        ),
        (
            USER,
            {"maxTokens": 64001},
            "The maximum tokens you requested exceeds the model limit of 64000. Try again with a maximum tokens value that is lower than 64000.",
        ),
        (
            USER,
            {"temperature": 2.0},
            "1 validation error detected: Value '2.0' at 'inferenceConfig.temperature' failed to satisfy constraint: Member must have value less than or equal to 1",
        ),
    ],
)
def test_converse_validation_errors(runtime: Any, messages: list[Any], config: dict[str, Any], message: str) -> None:
    error = _raised(lambda: runtime.converse(modelId=SONNET, messages=messages, inferenceConfig=config))
    assert isinstance(error, runtime.exceptions.ValidationException)
    assert error.response["Error"]["Message"] == message  # type: ignore[attr-defined]


def test_input_too_long(runtime: Any) -> None:
    long = [{"role": "user", "content": [{"text": "word " * 9000}]}]
    error = _raised(lambda: runtime.converse(modelId=SONNET, messages=long))
    assert isinstance(error, runtime.exceptions.ValidationException)
    assert error.response["Error"]["Message"] == "Input is too long for requested model."  # type: ignore[attr-defined]


def test_profile_only_model_called_on_demand(runtime: Any) -> None:
    error = _raised(lambda: runtime.converse(modelId="anthropic.claude-sonnet-4-6", messages=USER))
    assert isinstance(error, runtime.exceptions.ValidationException)
    assert "with on-demand throughput isn\u2019t supported" in error.response["Error"]["Message"]  # type: ignore[attr-defined]


def test_invoke_body_errors(runtime: Any) -> None:
    missing = json.dumps({"anthropic_version": "bedrock-2023-05-31", "messages": USER}).encode()
    error = _raised(lambda: runtime.invoke_model(modelId=SONNET, body=missing))
    assert isinstance(error, runtime.exceptions.ValidationException)
    assert error.response["Error"]["Message"] == (  # type: ignore[attr-defined]
        "Malformed input request: #: required key [max_tokens] not found, please reformat your input and try again."
    )
    extra = anthropic_body(stream=True)
    message = _raised(lambda: runtime.invoke_model(modelId=SONNET, body=extra)).response["Error"]["Message"]  # type: ignore[attr-defined]
    assert (
        message
        == "Malformed input request: #: extraneous key [stream] is not permitted, please reformat your input and try again."
    )
    garbage = _raised(lambda: runtime.invoke_model(modelId=SONNET, body=b"{not json"))
    assert isinstance(garbage, runtime.exceptions.ValidationException)


def test_raw_http_errors_are_json_never_500(live: LiveServer) -> None:
    for path, body in [
        (f"/model/{SONNET}/converse", b"\xff\xfe"),
        (f"/model/{SONNET}/converse", b"[]"),
        (f"/model/{SONNET}/converse", b'{"messages": "x"}'),
        (f"/model/{SONNET}/frobnicate", b"{}"),
    ]:
        response = httpx.post(live.url + path, content=body)
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
        assert response.headers["x-amzn-ErrorType"] and json.loads(response.text)["message"]


def test_count_tokens_rejects_bad_base64(runtime: Any) -> None:
    error = _raised(
        lambda: runtime.count_tokens(
            modelId="anthropic.claude-sonnet-4-5-20250929-v1:0",
            input={"invokeModel": {"body": base64.b64encode(b"nope")}},
        )
    )
    assert isinstance(error, runtime.exceptions.ValidationException)
