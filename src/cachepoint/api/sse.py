"""text/event-stream for /v1/messages: every event has both an `event:` and a `data:` line
(the 2.x SDK skips events without `event:`)."""

from __future__ import annotations

import json
from typing import Any


def sse_event(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()
