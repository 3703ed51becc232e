"""Bedrock Runtime: POST /model/{modelId}/{operation}, routed on the RAW path.

ARNs arrive with `%2F` inside the model segment (and `:` either literal or `%3A`), so the raw path is
split on '/' first and each segment decoded after; a decoded path would split the ARN apart.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cachepoint.accounting.usage import invoke_headers
from cachepoint.api import recording
from cachepoint.api.anthropic import translate as anthropic
from cachepoint.api.bedrock import translate as converse
from cachepoint.api.bedrock.responses import anthropic_message_body, cache_header, converse_body
from cachepoint.api.bedrock.calls import bedrock_call, parse_invoke_body, require_anthropic_spec
from cachepoint.api.bedrock.schema import ConverseRequest, CountTokensRequest
from cachepoint.api.bedrock.streams import converse_stream_op, invoke_stream_op
from cachepoint.api.common import MALFORMED, json_body, parse, services_of
from cachepoint.api.errors import request_id_of
from cachepoint.api.validation import coral_message
from cachepoint.errors import ResourceNotFoundError, ValidationError
from cachepoint.service import Result
from cachepoint.types import Prompt, SamplingParams

Handler = Callable[[Request, str], Awaitable[Response]]


def split_model_path(raw_path: bytes) -> tuple[str, str]:
    """b'/model/<id>/<operation>' → (decoded id, operation). Literal '/' inside an ARN is tolerated."""
    segments = raw_path.decode("latin-1").split("/")
    if len(segments) < 4 or segments[1] != "model":
        raise ResourceNotFoundError("The requested operation does not exist.")
    return unquote("/".join(segments[2:-1])), segments[-1]


async def runtime(request: Request) -> Response:
    model_id, operation = split_model_path(request.scope.get("raw_path") or request.url.path.encode())
    handler = OPERATIONS.get(operation)
    if handler is None:
        raise ResourceNotFoundError(f"Unknown operation: {operation}")
    return await handler(request, model_id)


async def converse_op(request: Request, model_id: str) -> Response:
    data = await json_body(request)
    recording.begin(request, "Converse", model_id, data)
    body = parse(ConverseRequest, data, coral_message)
    prompt = converse.to_prompt(body)
    sampling = converse.to_sampling(body.inferenceConfig, body.additionalModelRequestFields)
    result = await _complete(request, model_id, prompt, sampling)
    out = converse_body(result)
    recording.succeed(request, result, out)
    return JSONResponse(out, headers={"x-amzn-RequestId": request_id_of(request)} | cache_header(result))


async def invoke_op(request: Request, model_id: str) -> Response:
    data = await json_body(request)
    recording.begin(request, "InvokeModel", model_id, data)
    spec = require_anthropic_spec(request, model_id)
    body = parse_invoke_body(data)
    result = await _complete(request, model_id, anthropic.to_prompt(body), anthropic.to_sampling(body))
    headers = {"x-amzn-RequestId": request_id_of(request)} | invoke_headers(result.usage, result.latency_ms)
    out = anthropic_message_body(result, spec)
    recording.succeed(request, result, out)
    return JSONResponse(out, headers=headers | cache_header(result))


async def count_tokens_op(request: Request, model_id: str) -> Response:
    body = parse(CountTokensRequest, await json_body(request), coral_message)
    if body.input.converse is not None:
        prompt = converse.to_prompt(body.input.converse)
    elif body.input.invokeModel is not None:
        prompt = anthropic.to_prompt(parse_invoke_body(_decode_base64_json(body.input.invokeModel.body)))
    else:
        raise ValidationError(
            "1 validation error detected: Value null at 'input' failed to satisfy constraint: Member must not be null"
        )
    count = services_of(request).inference.count_tokens(model_id, prompt)
    return JSONResponse({"inputTokens": count}, headers={"x-amzn-RequestId": request_id_of(request)})


def _decode_base64_json(text: str) -> object:
    try:
        return json.loads(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        raise ValidationError(MALFORMED) from None


async def _complete(request: Request, model_id: str, prompt: Prompt, sampling: SamplingParams) -> Result:
    return await services_of(request).inference.complete(bedrock_call(request, model_id, prompt, sampling))


OPERATIONS: dict[str, Handler] = {
    "converse": converse_op,
    "converse-stream": converse_stream_op,
    "invoke": invoke_op,
    "invoke-with-response-stream": invoke_stream_op,
    "count-tokens": count_tokens_op,
}
