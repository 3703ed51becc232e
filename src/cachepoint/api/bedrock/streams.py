"""ConverseStream and InvokeModelWithResponseStream: event-stream frames, flushed one per event.

Validation happens before the response starts (ordinary HTTP errors); `messageStart` / `message_start`
goes out as soon as the cache plan is made, so a long prefill cannot trip a client's read timeout.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cachepoint.accounting.usage import converse_usage, invocation_metrics, nova_usage
from cachepoint.api.anthropic.events import MessageShape, anthropic_events
from cachepoint.api.bedrock import decode
from cachepoint.api.bedrock.headers import SERVICE_TIER_HEADER, echoed_headers, request_metadata
from cachepoint.api.bedrock.responses import (
    converse_body,
    new_message_id,
    offers_one_hour,
    plan_headers,
    service_tier,
)
from cachepoint.api.common import invocation, services_of
from cachepoint.api.errors import request_id_of, stream_exception_payload
from cachepoint.api.eventstream import event_frame, exception_frame
from cachepoint.api.streaming import EVENTSTREAM, guarded, stream_response
from cachepoint.errors import CachepointError
from cachepoint.service import Completed, InferenceService, Operation, PreparedCall, Result, Started, TextDelta


async def converse_stream_op(request: Request, model_id: str) -> Response:
    inference = services_of(request).inference
    req = await invocation(request, Operation.CONVERSE_STREAM, model_id, decode.converse_body, converse_body)
    call = await inference.open(req)
    late: dict[str, str] = {}
    return await _eventstream(request, _converse_frames(inference, call, late), {}, late)


async def _converse_frames(
    inference: InferenceService, call: PreparedCall, late: dict[str, str]
) -> AsyncGenerator[bytes, None]:
    async with aclosing(_converse_events(inference, call, late)) as events:
        async for name, payload, _ in events:
            yield event_frame(name, payload)


async def _converse_events(
    inference: InferenceService, call: PreparedCall, late: dict[str, str], nova: bool = False
) -> AsyncGenerator[tuple[str, dict[str, Any], Result | None], None]:
    """ConverseStream's events; Nova's native stream sends the same ones as chunks, its usage in its spelling."""
    async with aclosing(inference.stream(call)) as events:
        async for event in events:
            if isinstance(event, Started):
                late.update(plan_headers(event.plan, str(event.inference_region), event.replica, event.lifecycle))
                yield "messageStart", {"role": "assistant"}, None
            elif isinstance(event, TextDelta):
                yield "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": event.text}}, None
            elif isinstance(event, Completed):
                result = event.result
                yield "contentBlockStop", {"contentBlockIndex": 0}, None
                yield "messageStop", {"stopReason": result.stop_reason.value}, None
                usage = nova_usage(result.usage) if nova else converse_usage(result.usage)
                metadata = {"usage": usage, "metrics": {"latencyMs": result.latency_ms}} | service_tier(result)
                yield "metadata", metadata, result


async def invoke_stream_op(request: Request, model_id: str) -> Response:
    inference = services_of(request).inference
    echoed = echoed_headers(request)
    chunks: list[dict[str, Any]] = []  # the log's outputBodyJson: every decoded chunk, as Bedrock logs it

    def logged(result: Result) -> list[dict[str, Any]]:
        return chunks

    metadata = request_metadata(request)
    req = await invocation(request, Operation.INVOKE_STREAM, model_id, decode.invoke_body, logged, metadata,
                           service_tier=echoed.get(SERVICE_TIER_HEADER))  # fmt: skip
    call = await inference.open(req)
    shape = MessageShape(new_message_id(), call.spec.response_model_name, offers_one_hour(call.spec), True)
    late: dict[str, str] = {}
    if call.spec.invoke_body == "nova":
        frames = _nova_chunk_frames(inference, call, chunks, late)
    else:
        frames = _chunk_frames(inference, call, shape, chunks, late)
    return await _eventstream(request, frames, {"X-Amzn-Bedrock-Content-Type": "application/json"} | echoed, late)


async def _chunk_frames(
    inference: InferenceService,
    call: PreparedCall,
    shape: MessageShape,
    chunks: list[dict[str, Any]],
    late: dict[str, str],
) -> AsyncGenerator[bytes, None]:
    async with aclosing(anthropic_events(inference, call, shape, late)) as events:
        async for _, payload in events:
            chunks.append(payload)
            yield _chunk(payload)


async def _nova_chunk_frames(
    inference: InferenceService, call: PreparedCall, chunks: list[dict[str, Any]], late: dict[str, str]
) -> AsyncGenerator[bytes, None]:
    """Nova's native InvokeModelWithResponseStream: each Converse-style event is one chunk's JSON; the last one
    carries Bedrock's invocation metrics, as for every InvokeModel stream."""
    async with aclosing(_converse_events(inference, call, late, nova=True)) as events:
        async for name, payload, result in events:
            chunk: dict[str, Any] = {name: payload}
            if result is not None:
                first = result.first_token_ms if result.first_token_ms is not None else result.latency_ms
                chunk["amazon-bedrock-invocationMetrics"] = invocation_metrics(result.usage, result.latency_ms, first)
            chunks.append(chunk)
            yield _chunk(chunk)


def _chunk(payload: dict[str, Any]) -> bytes:
    encoded = base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
    return event_frame("chunk", {"bytes": encoded})


async def _eventstream(
    request: Request, frames: AsyncIterator[bytes], headers: dict[str, str], late: dict[str, str]
) -> Response:
    request_id = request_id_of(request)
    body = guarded(frames, request_id, _exception_frame)
    return await stream_response(body, EVENTSTREAM, {"x-amzn-RequestId": request_id} | headers, late)


def _exception_frame(error: CachepointError) -> bytes:
    return exception_frame(*stream_exception_payload(error))
