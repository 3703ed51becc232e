"""The HTTP listener: uvicorn with the connection-level bounds an exposed server needs.

- a request head must arrive complete within `header_timeout_s` of the connection opening (or of the
  previous response), so a client trickling header bytes cannot hold a connection forever (uvicorn's
  own keep-alive timer is reset by every byte);
- at most `max_connections` connections; beyond, uvicorn answers 503 at once;
- the process's open-file limit is raised to its hard limit, so the connection bound is the one that bites.
Body size and body time are bounded per request in `api/auth.py`.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from cachepoint.settings import Limits

log = logging.getLogger(__name__)


def guarded_h11(header_timeout_s: float) -> type[H11Protocol]:
    class GuardedH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._head_timer = self.loop.call_later(header_timeout_s, self._head_timeout)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timeout(self) -> None:
            self._head_timer = None
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                log.info("closing a connection that sent no complete request head in %.0f s", header_timeout_s)
                self.transport.close()

    return GuardedH11Protocol


def uvicorn_config(app: Any, host: str, port: int, limits: Limits, **options: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_h11(limits.header_timeout_s),
        limit_concurrency=limits.max_connections,
        timeout_keep_alive=5,
        log_level="warning",
        **options,
    )


def raise_open_file_limit() -> int:
    """Lift the soft descriptor limit to the hard one; returns the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            return int(hard)
        except (ValueError, OSError):
            return int(soft)
    return int(soft)
