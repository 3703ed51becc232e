"""A real cachepoint server (uvicorn, real sockets) in a background thread, for tests and benchmarks: the
same one users get from `cachepoint.testing`."""

from cachepoint.testing import LiveServer, free_port, serve

__all__ = ["LiveServer", "free_port", "serve"]
