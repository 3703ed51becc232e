"""One Usage value per request, computed once, and its views for every surface.

Buckets are disjoint: input (uncached) + cache read + cache write = all prompt tokens. Clients
(langchain-aws, LiteLLM, Strands) add the cache buckets back themselves, so they are never folded in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    had_checkpoint: bool = False

    def __post_init__(self) -> None:
        counts = (self.input_tokens, self.output_tokens, self.cache_read_tokens)
        if min(counts + (self.cache_write_5m_tokens, self.cache_write_1h_tokens)) < 0:
            raise ValueError("usage counts are never negative")

    @property
    def cache_write_tokens(self) -> int:
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens


def converse_usage(usage: Usage) -> dict[str, Any]:
    view: dict[str, Any] = {
        "inputTokens": usage.input_tokens,
        "outputTokens": usage.output_tokens,
        "totalTokens": usage.total_tokens,
    }
    if usage.had_checkpoint:
        view["cacheReadInputTokens"] = usage.cache_read_tokens
        view["cacheWriteInputTokens"] = usage.cache_write_tokens
    details = [
        {"ttl": ttl, "inputTokens": n}
        for ttl, n in (("1h", usage.cache_write_1h_tokens), ("5m", usage.cache_write_5m_tokens))
        if n
    ]
    if details:
        view["cacheDetails"] = details
    return view


SERVICE_TIER = "standard"  # the tier the Anthropic API reports; this server has no other


def anthropic_api_members(inference_geo: str) -> dict[str, Any]:
    """What the Anthropic API's usage adds to Bedrock's view today: the tier, server tools (none here), and where
    inference ran (`not_available` before Claude 4.6; `global` by default from 4.6 on)."""
    return {"service_tier": SERVICE_TIER, "server_tool_use": None, "inference_geo": inference_geo}


def anthropic_usage(usage: Usage, *, with_cache_creation: bool, api: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`api`: the members only the Anthropic API reports (`anthropic_api_members`); Bedrock's body has none."""
    view: dict[str, Any] = {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "output_tokens": usage.output_tokens,
    }
    if with_cache_creation:
        view["cache_creation"] = {
            "ephemeral_5m_input_tokens": usage.cache_write_5m_tokens,
            "ephemeral_1h_input_tokens": usage.cache_write_1h_tokens,
        }
    return view | dict(api or {})


def nova_usage(usage: Usage) -> dict[str, int]:
    """Nova's native InvokeModel usage: cache counters spelled `…TokenCount`; `totalTokens` counts cached ones too."""
    return {
        "inputTokens": usage.input_tokens,
        "outputTokens": usage.output_tokens,
        "totalTokens": usage.total_tokens,
        "cacheReadInputTokenCount": usage.cache_read_tokens,
        "cacheWriteInputTokenCount": usage.cache_write_tokens,
    }


def invoke_headers(usage: Usage, latency_ms: int) -> dict[str, str]:
    return {
        "X-Amzn-Bedrock-Input-Token-Count": str(usage.input_tokens),
        "X-Amzn-Bedrock-Output-Token-Count": str(usage.output_tokens),
        "X-Amzn-Bedrock-Invocation-Latency": str(latency_ms),
        "X-Amzn-Bedrock-Cache-Read-Input-Token-Count": str(usage.cache_read_tokens),
        "X-Amzn-Bedrock-Cache-Write-Input-Token-Count": str(usage.cache_write_tokens),
    }


def invocation_metrics(usage: Usage, latency_ms: int, first_byte_ms: int) -> dict[str, int]:
    return {
        "inputTokenCount": usage.input_tokens,
        "outputTokenCount": usage.output_tokens,
        "invocationLatency": latency_ms,
        "firstByteLatency": first_byte_ms,
        "cacheReadInputTokenCount": usage.cache_read_tokens,
        "cacheWriteInputTokenCount": usage.cache_write_tokens,
    }
