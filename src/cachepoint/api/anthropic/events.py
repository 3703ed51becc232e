"""The Anthropic stream event sequence, shared by InvokeModelWithResponseStream (as `chunk` frames)
and /v1/messages (as SSE):

    message_start (usage with the cache split, known before generation) → content_block_start →
    content_block_delta* → content_block_stop → message_delta (stop reason, cumulative usage) → message_stop
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from cachepoint.accounting.usage import Usage, anthropic_usage, invocation_metrics
from cachepoint.api.anthropic.diagnostics import diagnostics_member
from cachepoint.api.bedrock.responses import plan_headers
from cachepoint.cache.diagnosis import Diagnosis
from cachepoint.service import Completed, InferenceService, PreparedCall, Result, Started, TextDelta

AnthropicEvent = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class MessageShape:
    message_id: str
    model_name: str
    with_cache_creation: bool
    bedrock_metrics: bool  # Bedrock adds amazon-bedrock-invocationMetrics to message_stop
    api_usage: Mapping[str, Any] | None = None  # the members the Anthropic API's usage adds (Bedrock's has none)


async def anthropic_events(
    inference: InferenceService,
    call: PreparedCall,
    shape: MessageShape,
    late: dict[str, str],
) -> AsyncGenerator[AnthropicEvent, None]:
    """`late` receives the plan's headers before the first event (see `streaming.stream_response`)."""
    async with aclosing(inference.stream(call)) as events:
        async for event in events:
            if isinstance(event, Started):
                late.update(plan_headers(event.plan, str(event.inference_region), event.replica, event.lifecycle))
                yield "message_start", _message_start(shape, event.prompt_usage, event.diagnosis)
                yield (
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                )
            elif isinstance(event, TextDelta):
                delta = {"type": "text_delta", "text": event.text}
                yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
            elif isinstance(event, Completed):
                for item in _closing(shape, event.result):
                    yield item


def _message_start(shape: MessageShape, usage: Usage, diagnosis: Diagnosis | None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "id": shape.message_id,
        "type": "message",
        "role": "assistant",
        "model": shape.model_name,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": anthropic_usage(usage, with_cache_creation=shape.with_cache_creation, api=shape.api_usage),
    } | diagnostics_member(diagnosis)
    return {"type": "message_start", "message": message}


def _closing(shape: MessageShape, result: Result) -> list[AnthropicEvent]:
    usage = anthropic_usage(result.usage, with_cache_creation=shape.with_cache_creation, api=shape.api_usage)
    stop: dict[str, Any] = {"type": "message_stop"}
    if shape.bedrock_metrics:
        first = result.first_token_ms if result.first_token_ms is not None else result.latency_ms
        stop["amazon-bedrock-invocationMetrics"] = invocation_metrics(result.usage, result.latency_ms, first)
    delta = {"stop_reason": result.stop_reason.value, "stop_sequence": result.stop_sequence}
    return [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}),
        ("message_stop", stop),
    ]
