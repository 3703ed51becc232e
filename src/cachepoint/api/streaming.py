"""Streaming plumbing shared by both dialects: turn a frame iterator into a chunked response, and turn
a failure after the first byte into the dialect's in-stream error (the status is already 200)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable

from starlette.responses import StreamingResponse

from cachepoint.api.errors import as_cachepoint_error
from cachepoint.errors import CachepointError

EVENTSTREAM = "application/vnd.amazon.eventstream"
SSE = "text/event-stream"


async def guarded(
    frames: AsyncIterator[bytes],
    request_id: str,
    error_frame: Callable[[CachepointError], bytes],
) -> AsyncGenerator[bytes, None]:
    """The service has recorded the failure already (it records every outcome); this only renders it."""
    try:
        async for frame in frames:
            yield frame
    except Exception as exc:  # the in-stream error boundary: the client gets a frame, never a cut
        yield error_frame(as_cachepoint_error(exc, request_id))


async def stream_response(
    frames: AsyncIterator[bytes], media_type: str, headers: dict[str, str], late: dict[str, str] | None = None
) -> StreamingResponse:
    """Waits for the first frame, which the call sends once its cache plan is made, so that headers known only
    then (`late`, filled by the frame source: the checkpoints' outcomes and tiers) go out with the others."""
    iterator = aiter(frames)
    first = await anext(iterator, None)

    async def replay() -> AsyncGenerator[bytes, None]:
        if first is not None:
            yield first
        async for frame in iterator:
            yield frame

    headers = headers | (late or {}) | {"Cache-Control": "no-cache"}
    return StreamingResponse(replay(), media_type=media_type, headers=headers)
