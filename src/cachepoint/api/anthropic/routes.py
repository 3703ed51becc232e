"""The Anthropic Messages API on the same port: POST /v1/messages (JSON or SSE), /v1/messages/count_tokens.

Model names are Anthropic's (dated or undated) or Bedrock model IDs; the cache is the same one the
Bedrock paths use, in the listener's Region. `max_tokens: 0` pre-warms: prefill and cache write only.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cachepoint.api.anthropic import decode
from cachepoint.api.anthropic.events import AnthropicEvent, MessageShape, anthropic_events
from cachepoint.api.bedrock.responses import anthropic_message_body, cache_header, new_message_id
from cachepoint.api.common import invocation, services_of
from cachepoint.api.errors import anthropic_error_event, request_id_of
from cachepoint.api.sse import sse_event
from cachepoint.api.streaming import SSE, guarded, stream_response
from cachepoint.errors import CachepointError
from cachepoint.service import Operation

MESSAGE_PREFIX = "msg_"


SERVICE_TIER = "standard"  # the tier the Anthropic API reports in usage; this server has no other

async def messages(request: Request) -> Response:
    inference = services_of(request).inference
    call = await inference.open(await invocation(request, Operation.MESSAGES, "", decode.messages_body))
    headers = {"request-id": request_id_of(request)}
    message_id = new_message_id(MESSAGE_PREFIX)
    if call.decoded.stream:
        shape = MessageShape(message_id, call.spec.response_model_name, True, bedrock_metrics=False,
                             service_tier=SERVICE_TIER)  # fmt: skip
        late: dict[str, str] = {}
        frames = guarded(_sse(anthropic_events(inference, call, shape, late)), request_id_of(request), _error_event)
        return await stream_response(frames, SSE, headers, late)
    result = await inference.complete(call)
    body = anthropic_message_body(result, call.spec, message_id=message_id, with_cache_creation=True,
                                  service_tier=SERVICE_TIER)  # fmt: skip
    return JSONResponse(body, headers=headers | cache_header(result))


async def count_tokens(request: Request) -> Response:
    req = await invocation(request, Operation.COUNT_MESSAGE_TOKENS, "", decode.count_tokens_body)
    count = await services_of(request).inference.count_tokens(req)
    return JSONResponse({"input_tokens": count}, headers={"request-id": request_id_of(request)})


async def _sse(events: AsyncGenerator[AnthropicEvent, None]) -> AsyncGenerator[bytes, None]:
    async with aclosing(events):
        async for name, payload in events:
            yield sse_event(name, payload)
            if name == "message_start":
                yield sse_event("ping", {"type": "ping"})


def _error_event(error: CachepointError) -> bytes:
    return sse_event("error", anthropic_error_event(error))
