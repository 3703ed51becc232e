"""The single translation of `errors.*` to the wire, for both dialects and for stream frames."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cachepoint.errors import CachepointError, InternalError

log = logging.getLogger(__name__)

ANTHROPIC_PREFIX = "/v1/"  # the Anthropic API: its keys, its errors
ANTHROPIC_SHAPED = (ANTHROPIC_PREFIX, "/anthropic/v1/")  # errors in Anthropic's shape (Bedrock's Messages endpoint too)


def bedrock_error(error: CachepointError, request_id: str) -> Response:
    headers = {"x-amzn-ErrorType": error.bedrock_code, "x-amzn-RequestId": request_id}
    return JSONResponse({"message": error.bedrock_message}, status_code=error.http_status, headers=headers)


def anthropic_error(error: CachepointError, request_id: str) -> Response:
    headers = {"request-id": request_id}
    body = anthropic_error_event(error) | {"request_id": request_id}
    return JSONResponse(body, status_code=error.anthropic_status, headers=headers)


def stream_exception_payload(error: CachepointError) -> tuple[str, dict[str, object]]:
    """(`:exception-type`, payload) of an event-stream exception frame."""
    payload: dict[str, object] = {"message": error.bedrock_message}
    if error.stream_code == "modelStreamErrorException":
        payload |= {"originalStatusCode": 500, "originalMessage": error.bedrock_message}
    return error.stream_code, payload


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or "unknown")


def as_cachepoint_error(exc: BaseException, request_id: str) -> CachepointError:
    """Any failure as a wire error; unexpected ones are logged with the request ID and hidden."""
    if isinstance(exc, CachepointError):
        return exc
    log.error("unexpected failure in request %s", request_id, exc_info=exc)
    return InternalError("The server encountered an internal error while processing the request.")


def anthropic_error_event(error: CachepointError) -> dict[str, object]:
    return {"type": "error", "error": {"type": error.anthropic_type, "message": error.anthropic_message}}


async def handle_error(request: Request, exc: Exception) -> Response:
    """Starlette's exception handler: the one boundary where any failure becomes a wire error."""
    error = as_cachepoint_error(exc, request_id_of(request))
    render = anthropic_error if request.url.path.startswith(ANTHROPIC_SHAPED) else bedrock_error
    return render(error, request_id_of(request))
