"""ConverseStream and InvokeModelWithResponseStream: event-stream frames, flushed one per event.

Validation happens before the response starts (ordinary HTTP errors); `messageStart` / `message_start`
goes out as soon as the cache plan is made, so a long prefill cannot trip a client's read timeout.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import aclosing

from starlette.requests import Request
from starlette.responses import Response

from cachepoint.accounting.usage import converse_usage
from cachepoint.api.anthropic import translate as anthropic
from cachepoint.api.anthropic.events import MessageShape, anthropic_events
from cachepoint.api.bedrock import translate as converse
from cachepoint.api import recording
from cachepoint.api.bedrock.responses import converse_body, new_message_id, offers_one_hour
from cachepoint.api.bedrock.calls import bedrock_call, parse_invoke_body, require_anthropic_spec
from cachepoint.api.bedrock.schema import ConverseRequest
from cachepoint.api.common import json_body, parse, services_of
from cachepoint.api.errors import request_id_of, stream_exception_payload
from cachepoint.api.eventstream import event_frame, exception_frame
from cachepoint.api.streaming import EVENTSTREAM, guarded, stream_response
from cachepoint.api.validation import coral_message
from cachepoint.errors import CachepointError
from cachepoint.service import Completed, InferenceService, PreparedCall, Result, Started, TextDelta


async def converse_stream_op(request: Request, model_id: str) -> Response:
    data = await json_body(request)
    recording.begin(request, "ConverseStream", model_id, data)
    body = parse(ConverseRequest, data, coral_message)
    sampling = converse.to_sampling(body.inferenceConfig, body.additionalModelRequestFields)
    call = bedrock_call(request, model_id, converse.to_prompt(body), sampling)
    frames = _converse_frames(request, services_of(request).inference, call)
    return _eventstream(request, frames, {})


async def _converse_frames(request: Request, inference: InferenceService, call: PreparedCall) -> AsyncIterator[bytes]:
    async with aclosing(inference.stream(call)) as events:
        async for event in events:
            if isinstance(event, Started):
                yield event_frame("messageStart", {"role": "assistant"})
            elif isinstance(event, TextDelta):
                yield event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": event.text}})
            elif isinstance(event, Completed):
                result = event.result
                yield event_frame("contentBlockStop", {"contentBlockIndex": 0})
                yield event_frame("messageStop", {"stopReason": result.stop_reason.value})
                metadata = {"usage": converse_usage(result.usage), "metrics": {"latencyMs": result.latency_ms}}
                yield event_frame("metadata", metadata)
                recording.succeed(request, result, converse_body(result))  # the log's aggregate of the stream


async def invoke_stream_op(request: Request, model_id: str) -> Response:
    data = await json_body(request)
    recording.begin(request, "InvokeModelWithResponseStream", model_id, data)
    spec = require_anthropic_spec(request, model_id)
    body = parse_invoke_body(data)
    call = bedrock_call(request, model_id, anthropic.to_prompt(body), anthropic.to_sampling(body))
    shape = MessageShape(new_message_id(), spec.response_model_name, offers_one_hour(spec), bedrock_metrics=True)
    frames = _chunk_frames(request, services_of(request).inference, call, shape)
    return _eventstream(request, frames, {"X-Amzn-Bedrock-Content-Type": "application/json"})


async def _chunk_frames(
    request: Request, inference: InferenceService, call: PreparedCall, shape: MessageShape
) -> AsyncIterator[bytes]:
    chunks: list[dict[str, object]] = []  # the log's outputBodyJson: every decoded chunk
    results: list[Result] = []
    async with aclosing(anthropic_events(inference, call, shape, on_result=results.append)) as events:
        async for _, payload in events:
            chunks.append(payload)
            encoded = base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
            yield event_frame("chunk", {"bytes": encoded})
    recording.succeed(request, results[0], chunks)


def _eventstream(request: Request, frames: AsyncIterator[bytes], headers: dict[str, str]) -> Response:
    request_id = request_id_of(request)
    body = guarded(frames, request_id, _exception_frame, lambda error: recording.fail(request, error))
    return stream_response(body, EVENTSTREAM, {"x-amzn-RequestId": request_id} | headers)


def _exception_frame(error: CachepointError) -> bytes:
    return exception_frame(*stream_exception_payload(error))
