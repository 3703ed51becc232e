"""The Anthropic Messages API on the same port: POST /v1/messages (JSON or SSE), /v1/messages/count_tokens.

Model names are Anthropic's (dated or undated) or Bedrock model IDs; the cache is the same one the
Bedrock paths use, in the listener's Region. `max_tokens: 0` pre-warms: prefill and cache write only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cachepoint.api import recording
from cachepoint.api.anthropic import translate
from cachepoint.api.anthropic.events import AnthropicEvent, MessageShape, anthropic_events
from cachepoint.api.anthropic.schema import CountTokensBody, MessagesBody
from cachepoint.api.bedrock.responses import anthropic_message_body, cache_header, new_message_id
from cachepoint.api.common import call_context, json_body, parse, services_of
from cachepoint.api.errors import anthropic_error_event, request_id_of
from cachepoint.api.sse import sse_event
from cachepoint.api.streaming import SSE, guarded, stream_response
from cachepoint.api.validation import anthropic_message
from cachepoint.errors import CachepointError, ResourceNotFoundError, ValidationError
from cachepoint.models.spec import ModelSpec
from cachepoint.service import InferenceService

MESSAGE_PREFIX = "msg_"


async def messages(request: Request) -> Response:
    inference = services_of(request).inference
    data = await json_body(request)
    body = parse(MessagesBody, data, anthropic_message)
    recording.begin(request, "Messages", body.model, data)  # metrics and dashboard; Bedrock's logs don't know it
    spec = _spec(inference, body.model)
    if body.stream and body.max_tokens == 0:
        raise ValidationError("max_tokens: pre-warming with max_tokens 0 is not available with stream: true")
    prompt = translate.with_automatic_checkpoint(translate.to_prompt(body), body.cache_control)
    call = inference.prepare_for(call_context(request), body.model, spec, prompt, translate.to_sampling(body))
    headers = {"request-id": request_id_of(request)}
    if body.stream:
        shape = MessageShape(new_message_id(MESSAGE_PREFIX), spec.response_model_name, True, bedrock_metrics=False)
        events = anthropic_events(
            inference, call, shape, on_result=lambda result: recording.succeed(request, result, None)
        )
        on_error = lambda error: recording.fail(request, error)  # noqa: E731
        frames = guarded(_sse(events), request_id_of(request), _error_event, on_error)
        return stream_response(frames, SSE, headers)
    result = await inference.complete(call)
    recording.succeed(request, result, None)
    body_out = anthropic_message_body(result, spec, message_id=new_message_id(MESSAGE_PREFIX), with_cache_creation=True)
    return JSONResponse(body_out, headers=headers | cache_header(result))


async def count_tokens(request: Request) -> Response:
    inference = services_of(request).inference
    body = parse(CountTokensBody, await json_body(request), anthropic_message)
    count = inference.count_tokens_for(_spec(inference, body.model), translate.to_prompt(body))
    return JSONResponse({"input_tokens": count})


def _spec(inference: InferenceService, model: str) -> ModelSpec:
    spec = inference.catalog.by_anthropic_name(model)
    if spec is None:
        raise ResourceNotFoundError(f"model: {model}")
    return spec


async def _sse(events: AsyncIterator[AnthropicEvent]) -> AsyncIterator[bytes]:
    async with aclosing(events):
        async for name, payload in events:
            yield sse_event(name, payload)
            if name == "message_start":
                yield sse_event("ping", {"type": "ping"})


def _error_event(error: CachepointError) -> bytes:
    return sse_event("error", anthropic_error_event(error))
