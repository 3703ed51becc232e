"""Run a real cachepoint server (uvicorn, real sockets) in a background thread for tests and benchmarks."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from cachepoint.api.app import create_app
from cachepoint.api.common import AppServices
from cachepoint.api.server import uvicorn_config


@dataclass(frozen=True)
class LiveServer:
    url: str
    services: AppServices


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(services: AppServices, **uvicorn_options: object) -> Iterator[LiveServer]:
    """`uvicorn_options` e.g. ssl_certfile/ssl_keyfile for an HTTPS listener."""
    port = free_port()
    config = uvicorn_config(create_app(services), "127.0.0.1", port, services.settings.limits, **uvicorn_options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        scheme = "https" if "ssl_certfile" in uvicorn_options else "http"
        yield LiveServer(f"{scheme}://127.0.0.1:{port}", services)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
