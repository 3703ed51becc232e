"""The other clients users point at Bedrock, unmodified, against the shared real server: the AWS CLI,
langchain-aws (Converse and InvokeModel flavours), LiteLLM and Strands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.e2e.test_caching import SONNET, document
from tests.live import LiveServer

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIDCLIENTS", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}


def aws(live: LiveServer, *args: str) -> dict[str, Any]:
    env = os.environ | CREDENTIALS
    command = [sys.executable, "-m", "awscli", *args, "--endpoint-url", live.url, "--output", "json"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_aws_cli_converse_and_control_plane(live: LiveServer) -> None:
    messages = json.dumps([{"role": "user", "content": [{"text": "Hello"}]}])
    reply = aws(live, "bedrock-runtime", "converse", "--model-id", SONNET, "--messages", messages,
                "--inference-config", '{"maxTokens": 4}')  # fmt: skip
    assert reply["usage"]["outputTokens"] > 0 and reply["output"]["message"]["role"] == "assistant"
    profile = aws(live, "bedrock", "get-inference-profile", "--inference-profile-identifier", SONNET)
    assert profile["inferenceProfileId"] == SONNET


def test_langchain_converse_with_a_cache_point(live: LiveServer) -> None:
    from langchain_aws import ChatBedrockConverse

    chat = ChatBedrockConverse(model=SONNET, endpoint_url=live.url, region_name="us-east-1", aws_access_key_id="AKIDLANG",
                               aws_secret_access_key="x", max_tokens=8, temperature=0)  # fmt: skip
    content = [{"type": "text", "text": document("langchain")}, ChatBedrockConverse.create_cache_point(),
               {"type": "text", "text": "Which week lists the most crates?"}]  # fmt: skip
    messages: list[Any] = [("human", content)]
    first, second = chat.invoke(messages), chat.invoke(messages)
    details_1, details_2 = first.usage_metadata["input_token_details"], second.usage_metadata["input_token_details"]
    # langchain-aws files writes under the per-TTL keys when cacheDetails is present
    written = details_1.get("cache_creation", 0) + details_1.get("ephemeral_5m_input_tokens", 0)
    assert written >= 1024 and details_2["cache_read"] == written
    # langchain adds the cache buckets back into input_tokens: the server must not have folded them in already
    assert second.usage_metadata["input_tokens"] == first.usage_metadata["input_tokens"]
    streamed = list(chat.stream(messages))
    assert len(streamed) > 1 and sum(len(str(c.content)) for c in streamed) > 0


def test_langchain_invoke_model_reads_usage_headers(live: LiveServer) -> None:
    from langchain_aws import ChatBedrock

    chat = ChatBedrock(model_id=SONNET, endpoint_url=live.url, region_name="us-east-1", aws_access_key_id="AKIDLANG",
                       aws_secret_access_key="x", model_kwargs={"max_tokens": 6}, provider="anthropic")  # fmt: skip
    reply = chat.invoke("Hello")
    assert reply.usage_metadata["output_tokens"] > 0 and reply.usage_metadata["input_tokens"] > 0


def test_litellm_converse_counts_cache_tokens_once(live: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    kwargs: dict[str, Any] = dict(
        model=f"bedrock/converse/{SONNET}", aws_bedrock_runtime_endpoint=live.url, aws_region_name="us-east-1",
        aws_access_key_id="AKIDLITE", aws_secret_access_key="x", max_tokens=6,
        messages=[{"role": "system", "content": [{"type": "text", "text": document("litellm"), "cache_control": {"type": "ephemeral"}}]},
                  {"role": "user", "content": "Which week?"}],
    )  # fmt: skip
    first, second = litellm.completion(**kwargs), litellm.completion(**kwargs)
    written = first.usage.cache_creation_input_tokens
    assert written >= 1024 and second.usage.prompt_tokens_details.cached_tokens == written
    assert second.usage.prompt_tokens == first.usage.prompt_tokens  # input + read + write, each counted once


def test_strands_agent_over_converse_stream(live: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    from strands import Agent
    from strands.models.bedrock import BedrockModel

    model = BedrockModel(model_id=SONNET, region_name="us-east-1", endpoint_url=live.url, max_tokens=200, temperature=0)
    agent = Agent(model=model, callback_handler=None)
    result = agent("Say hello in five words.")
    assert result.stop_reason == "end_turn"
    assert result.metrics.accumulated_usage["outputTokens"] > 0
