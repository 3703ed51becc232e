"""The Anthropic Messages API on the same port: POST /v1/messages (JSON or SSE), /v1/messages/count_tokens,
and Bedrock Runtime's own Messages endpoint, POST /anthropic/v1/messages.

Also POST /anthropic/v1/messages/count_tokens, as AWS documents it for Claude models that Bedrock's CountTokens
operation does not serve.

On /v1, model names are Anthropic's (dated or undated) or Bedrock model IDs, and usage is the Anthropic API's.
On /anthropic/v1 (Bedrock Runtime's base URL `…/anthropic`), the model is a Bedrock model or inference-profile
ID (routed across the profile's Regions), callers sign with SigV4 or a Bedrock API key, usage is Bedrock's
view of it and calls go to the invocation logs. The cache is the one the Bedrock paths use. `max_tokens: 0`
pre-warms: prefill and cache write only.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cachepoint.accounting.usage import anthropic_api_members
from cachepoint.api.anthropic import decode
from cachepoint.api.anthropic.diagnostics import diagnostics_member
from cachepoint.api.anthropic.events import AnthropicEvent, MessageShape, anthropic_events
from cachepoint.api.bedrock.responses import anthropic_message_body, cache_header, new_message_id, offers_one_hour
from cachepoint.api.common import invocation, services_of
from cachepoint.api.errors import anthropic_error_event, request_id_of
from cachepoint.api.sse import sse_event
from cachepoint.api.streaming import SSE, guarded, stream_response
from cachepoint.errors import CachepointError
from cachepoint.service import Operation

@dataclass(frozen=True)
class Flavour:
    """What differs between the Anthropic API's Messages endpoint and Bedrock Runtime's."""

    operation: Operation
    message_prefix: str
    bedrock: bool  # Bedrock's usage view: `cache_creation` only for models offering the 1-hour TTL, no API members


ANTHROPIC_API = Flavour(Operation.MESSAGES, "msg_", bedrock=False)
BEDROCK_RUNTIME = Flavour(Operation.BEDROCK_MESSAGES, "msg_bdrk_", bedrock=True)


async def messages(request: Request) -> Response:
    return await _messages(request, ANTHROPIC_API)


async def bedrock_messages(request: Request) -> Response:
    return await _messages(request, BEDROCK_RUNTIME)


async def _messages(request: Request, flavour: Flavour) -> Response:
    inference = services_of(request).inference
    message_id = new_message_id(flavour.message_prefix)
    asked = await invocation(request, flavour.operation, "", decode.messages_body, response_id=message_id)
    call = await inference.open(asked)
    headers = {"request-id": request_id_of(request)}
    creation = offers_one_hour(call.spec) if flavour.bedrock else True
    api = None if flavour.bedrock else anthropic_api_members(call.spec.inference_geo)
    if call.decoded.stream:
        shape = MessageShape(message_id, call.spec.response_model_name, creation, bedrock_metrics=flavour.bedrock,
                             api_usage=api)  # fmt: skip
        late: dict[str, str] = {}
        frames = guarded(_sse(anthropic_events(inference, call, shape, late)), request_id_of(request), _error_event)
        return await stream_response(frames, SSE, headers, late)
    result = await inference.complete(call)
    body = anthropic_message_body(result, call.spec, message_id=message_id, with_cache_creation=creation,
                                  api_usage=api)  # fmt: skip
    return JSONResponse(body | diagnostics_member(result.diagnosis), headers=headers | cache_header(result))


async def count_tokens(request: Request) -> Response:
    return await _count_tokens(request, Operation.COUNT_MESSAGE_TOKENS)


async def bedrock_count_tokens(request: Request) -> Response:
    """Bedrock's documented way to count tokens for Claude models its CountTokens operation does not serve."""
    return await _count_tokens(request, Operation.COUNT_BEDROCK_MESSAGE_TOKENS)


async def _count_tokens(request: Request, operation: Operation) -> Response:
    req = await invocation(request, operation, "", decode.count_tokens_body)
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
