"""Bedrock Runtime: POST /model/{modelId}/{operation}, routed on the RAW path.

ARNs arrive with `%2F` inside the model segment (and `:` either literal or `%3A`), so the raw path is
split on '/' first and each segment decoded after; a decoded path would split the ARN apart.
Each handler: build the request, make one service call, render.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cachepoint.accounting.usage import invoke_headers
from cachepoint.api.bedrock import decode
from cachepoint.api.bedrock.headers import SERVICE_TIER_HEADER, echoed_headers, request_metadata
from cachepoint.api.bedrock.responses import (
    anthropic_message_body,
    cache_header,
    converse_body,
    new_message_id,
    nova_body,
)
from cachepoint.api.bedrock.streams import converse_stream_op, invoke_stream_op
from cachepoint.api.common import invocation, services_of
from cachepoint.api.errors import request_id_of
from cachepoint.errors import ResourceNotFoundError
from cachepoint.service import Operation, Result

Handler = Callable[[Request, str], Awaitable[Response]]


def split_model_path(raw_path: bytes) -> tuple[str, str]:
    """b'/model/<id>/<operation>' → (decoded id, operation). Literal '/' inside an ARN is tolerated."""
    segments = raw_path.decode("latin-1").split("/")
    if len(segments) < 4 or segments[1] != "model":
        raise ResourceNotFoundError("The requested operation does not exist.")
    return unquote("/".join(segments[2:-1]), errors="replace"), segments[-1]


async def runtime(request: Request) -> Response:
    model_id, operation = split_model_path(request.scope.get("raw_path") or request.url.path.encode())
    handler = OPERATIONS.get(operation)
    if handler is None:
        raise ResourceNotFoundError(f"Unknown operation: {operation[:64]}")
    return await handler(request, model_id)


async def converse_op(request: Request, model_id: str) -> Response:
    inference = services_of(request).inference
    req = await invocation(request, Operation.CONVERSE, model_id, decode.converse_body, converse_body)
    result = await inference.complete(await inference.open(req))
    return JSONResponse(converse_body(result), headers=_headers(request, result))


async def invoke_op(request: Request, model_id: str) -> Response:
    inference = services_of(request).inference
    echoed = echoed_headers(request)
    message_id = new_message_id()

    def body_of(result: Result) -> dict[str, object]:
        if result.spec.invoke_body == "nova":
            return nova_body(result)
        return anthropic_message_body(result, result.spec, message_id=message_id)

    req = await invocation(request, Operation.INVOKE, model_id, decode.invoke_body, body_of, request_metadata(request),
                           service_tier=echoed.get(SERVICE_TIER_HEADER))  # fmt: skip
    result = await inference.complete(await inference.open(req))
    headers = _headers(request, result) | invoke_headers(result.usage, result.latency_ms) | echoed
    return JSONResponse(body_of(result), headers=headers)


async def count_tokens_op(request: Request, model_id: str) -> Response:
    req = await invocation(request, Operation.COUNT_TOKENS, model_id, decode.count_tokens_body)
    count = await services_of(request).inference.count_tokens(req)
    return JSONResponse({"inputTokens": count}, headers={"x-amzn-RequestId": request_id_of(request)})


def _headers(request: Request, result: Result) -> dict[str, str]:
    return {"x-amzn-RequestId": request_id_of(request)} | cache_header(result)


OPERATIONS: dict[str, Handler] = {
    "converse": converse_op,
    "converse-stream": converse_stream_op,
    "invoke": invoke_op,
    "invoke-with-response-stream": invoke_stream_op,
    "count-tokens": count_tokens_op,
}
