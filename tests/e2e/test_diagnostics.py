"""Anthropic's cache diagnosis through the anthropic SDK on the real model: `Anthropic` (the /v1 API) and
`AnthropicBedrockMantle` (Bedrock Runtime's /anthropic route), buffered and streamed; the SDK parses
Anthropic's reasons into its types and keeps cachepoint's extra reasons as they came."""

from __future__ import annotations

from typing import Any

import anthropic

from cachepoint.clock import FakeClock
from tests.e2e.test_caching import SONNET, document
from tests.live import LiveServer


def system(tag: str) -> Any:
    return [{"type": "text", "text": document(tag), "cache_control": {"type": "ephemeral"}}]


def test_the_anthropic_sdk_reads_each_reason(live: LiveServer, clock: FakeClock) -> None:
    client = anthropic.Anthropic(base_url=live.url, api_key="sk-test-diagnosis", max_retries=0)

    def create(sys: Any, *turns: str, previous: str | None) -> Any:
        messages: Any = [{"role": ("user", "assistant")[i % 2], "content": t} for i, t in enumerate(turns)]
        return client.messages.create(model="claude-sonnet-4-6", max_tokens=3, system=sys, messages=messages,
                                      diagnostics={"previous_message_id": previous})  # fmt: skip

    first = create(system("diagnosis"), "Q1?", previous=None)
    cached = first.usage.cache_creation_input_tokens
    assert cached > 1024 and first.diagnostics is None
    second = create(system("diagnosis"), "Q1?", "A1.", "Q2?", previous=first.id)
    assert second.diagnostics is None and second.usage.cache_read_input_tokens == cached
    changed = create(system("diagnosis-b"), "Q1?", previous=second.id)
    miss = changed.diagnostics.cache_miss_reason
    assert miss.type == "system_changed" and miss.cache_missed_input_tokens == cached
    lost = create(system("diagnosis"), "Q1?", previous="msg_unknown")
    assert lost.diagnostics.cache_miss_reason.type == "previous_message_not_found"

    clock.tick(301)  # the 5-minute TTL of the original system prompt runs out
    expired = client.messages.with_raw_response.create(
        model="claude-sonnet-4-6", max_tokens=3, system=system("diagnosis"), diagnostics={"previous_message_id": second.id},
        messages=[{"role": "user", "content": "Q1?"}, {"role": "assistant", "content": "A1."},
                  {"role": "user", "content": "Q2?"}])  # fmt: skip
    assert expired.headers["x-cachepoint-cache"].startswith("written:") and ":expired" in expired.headers["x-cachepoint-cache"]
    reason = expired.parse().diagnostics.cache_miss_reason
    assert reason.type == "ttl_expired" and reason.cache_missed_input_tokens == cached  # an extra value, kept


def test_bedrock_runtimes_route_and_streams_carry_it(live: LiveServer) -> None:
    client = anthropic.AnthropicBedrockMantle(base_url=f"{live.url}/anthropic", api_key="bedrock-key-diag",
                                              max_retries=0)  # fmt: skip
    first = client.messages.create(model=SONNET, max_tokens=3, system=system("mantle-diag"),
                                   messages=[{"role": "user", "content": "Q1?"}],
                                   diagnostics={"previous_message_id": None})  # fmt: skip
    assert first.id.startswith("msg_bdrk_") and first.diagnostics is None
    with client.messages.stream(model=SONNET, max_tokens=3, system="Other.", diagnostics={"previous_message_id": first.id},
                                messages=[{"role": "user", "content": "Q1?"}]) as stream:  # fmt: skip
        final = stream.get_final_message()
    miss = final.diagnostics.cache_miss_reason
    assert miss.type == "system_changed" and miss.cache_missed_input_tokens == first.usage.cache_creation_input_tokens
