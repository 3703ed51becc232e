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


def stream_response(frames: AsyncIterator[bytes], media_type: str, headers: dict[str, str]) -> StreamingResponse:
    return StreamingResponse(frames, media_type=media_type, headers=headers | {"Cache-Control": "no-cache"})
