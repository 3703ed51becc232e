"""Bedrock Runtime's own Anthropic Messages endpoint (base URL `…/anthropic`): Bedrock model and profile IDs,
Bedrock credentials (SigV4 or an API key), Bedrock's usage view, Anthropic-shaped errors, invocation logs."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from cachepoint.api.common import AppServices
from tests.api.wire import sigv4_headers

PATH = "/anthropic/v1/messages"
PROFILE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
DOCUMENT = {"type": "text", "text": "0123456789" * 110, "cache_control": {"type": "ephemeral"}}
BODY: dict[str, Any] = {"model": PROFILE, "max_tokens": 8,
                        "messages": [{"role": "user", "content": [DOCUMENT, {"type": "text", "text": "Q?"}]}]}  # fmt: skip
BEARER = {"authorization": "Bearer bedrock-api-key-example", "anthropic-version": "2023-06-01"}


def test_a_profile_writes_then_reads_with_bedrock_usage(client: TestClient, fake_services: AppServices) -> None:
    first, second = (client.post(PATH, json=BODY, headers=BEARER) for _ in range(2))
    assert first.status_code == 200, first.text
    written = first.json()["usage"]["cache_creation_input_tokens"]
    assert written > 1100 and first.headers["x-cachepoint-cache"] == f"written:{written}:5m:new"
    body = second.json()
    assert body["id"].startswith("msg_bdrk_") and body["model"] == "claude-sonnet-4-5-20250929"
    assert body["usage"]["cache_read_input_tokens"] == written and "service_tier" not in body["usage"]
    assert "cache_creation" in body["usage"]  # Sonnet 4.5 offers the 1-hour TTL: Bedrock shows the split
    assert second.headers["x-amzn-bedrock-inference-region"] in ("us-east-1", "us-east-2", "us-west-2")
    assert fake_services.telemetry.flush()


def test_sigv4_is_accepted_and_errors_are_anthropic_shaped(client: TestClient) -> None:
    signed = client.post(PATH, json=BODY, headers=sigv4_headers() | {"anthropic-version": "2023-06-01"})
    assert signed.status_code == 200, signed.text
    bare = client.post(PATH, json=BODY | {"model": "anthropic.claude-sonnet-4-5-20250929-v1:0"}, headers=BEARER)
    assert bare.status_code == 400 and bare.json()["type"] == "error"
    assert bare.json()["error"]["type"] == "invalid_request_error"
    assert "on-demand throughput isn" in bare.json()["error"]["message"]  # Bedrock's own rule, Anthropic's shape


def test_count_tokens_takes_bedrock_ids_and_credentials(client: TestClient) -> None:
    """AWS documents Anthropic's count_tokens on the `…/anthropic` base URL for Claude models its CountTokens
    operation does not serve: Bedrock model and profile IDs, a Bedrock API key, Anthropic's answer and errors."""
    count_body = {"model": PROFILE, "messages": BODY["messages"]}
    counted = client.post(f"{PATH}/count_tokens", json=count_body, headers=BEARER)
    assert counted.status_code == 200, counted.text
    assert counted.json() == {"input_tokens": client.post(PATH, json=BODY, headers=BEARER).json()["usage"][
        "input_tokens"] + 1106}  # fmt: skip  # the prompt: the 1,106 written tokens plus the uncached rest
    unknown = client.post(f"{PATH}/count_tokens", json=count_body | {"model": "claude-sonnet-4-6"}, headers=BEARER)
    assert unknown.status_code == 400 and unknown.json()["error"]["message"] == "The provided model identifier is invalid."
