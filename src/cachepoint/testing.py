"""Test your own prompt caching offline: a cachepoint server inside your test process, the way moto or
LocalStack stand in for AWS services.

A pytest plugin (registered under the `pytest11` entry point, so installing cachepoint enables it):

    def test_my_agent_caches_its_system_prompt(cachepoint_server):
        runtime = cachepoint_server.bedrock_runtime()
        first = runtime.converse(modelId=MODEL, system=[{"text": LONG_PROMPT}, {"cachePoint": {"type": "default"}}],
                                 messages=[{"role": "user", "content": [{"text": "Hi"}]}])
        assert_cache_written(first, tokens=...)
        assert_cache_hit(runtime.converse(...same prefix...))

`cachepoint_server` is one server for the test session: the fake engine by default (deterministic and
instant; pass `--cachepoint-engine=embedded` for the real model), any credentials accepted, its state in a
temporary folder. `bedrock_endpoint(url)` points boto3 (and anything built on it) at a server through
`AWS_ENDPOINT_URL_BEDROCK_RUNTIME`. The assertion helpers read Converse responses, InvokeModel bodies and
Anthropic messages alike.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from cachepoint.api.app import create_app
from cachepoint.api.common import AppServices
from cachepoint.api.server import uvicorn_config

ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"
ENGINES = ("fake", "embedded")


@dataclass(frozen=True)
class LiveServer:
    url: str
    services: AppServices
    region: str = "us-east-1"

    def bedrock_runtime(self, access_key: str = "AKIDCACHEPOINTTEST", **config: Any) -> Any:
        """A boto3 bedrock-runtime client for this server (any credentials are accepted)."""
        return self._boto3("bedrock-runtime", access_key, **config)

    def bedrock(self, access_key: str = "AKIDCACHEPOINTTEST", **config: Any) -> Any:
        """A boto3 bedrock (control plane) client: inference profiles, tags, logging configuration."""
        return self._boto3("bedrock", access_key, **config)

    def anthropic(self, api_key: str = "sk-cachepoint-test") -> Any:
        """An `anthropic.Anthropic` client on this server's /v1/messages."""
        import anthropic

        return anthropic.Anthropic(base_url=self.url, api_key=api_key, max_retries=0)

    def _boto3(self, service: str, access_key: str, **config: Any) -> Any:
        import boto3
        from botocore.config import Config

        options = {"retries": {"total_max_attempts": 1}, "read_timeout": 300} | config
        return boto3.client(service, endpoint_url=self.url, region_name=self.region, aws_access_key_id=access_key,
                            aws_secret_access_key="cachepoint-test", config=Config(**options))  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(services: AppServices, **uvicorn_options: object) -> Iterator[LiveServer]:
    """Serve `services` on a free loopback port from a background thread (real HTTP, real sockets).
    `uvicorn_options` e.g. ssl_certfile/ssl_keyfile for an HTTPS listener."""
    port = free_port()
    config = uvicorn_config(create_app(services), "127.0.0.1", port, services.settings.limits, **uvicorn_options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the cachepoint test server did not start")
        time.sleep(0.01)
    try:
        scheme = "https" if "ssl_certfile" in uvicorn_options else "http"
        yield LiveServer(f"{scheme}://127.0.0.1:{port}", services, services.settings.region)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def run_server(engine: str = "fake", state_dir: Path | None = None) -> Iterator[LiveServer]:
    """A whole cachepoint (every API, the cache, logs) in this process: `fake` (instant, deterministic) or
    `embedded` (the real SmolLM2 model on llama.cpp). State goes to `state_dir`, else a temporary folder."""
    from cachepoint.bootstrap import build_services
    from cachepoint.settings import EngineSettings, Settings

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    kind = "fake" if engine == "fake" else "llamacpp"
    with tempfile.TemporaryDirectory(prefix="cachepoint-") as temporary:
        settings = Settings(engines={"default": EngineSettings("default", kind=kind)},
                            state_dir=state_dir or Path(temporary))  # fmt: skip
        services = build_services(settings)
        with serve(services) as server:
            yield server


@contextmanager
def bedrock_endpoint(url: str) -> Iterator[None]:
    """boto3 clients made inside the block (and libraries built on boto3) talk to `url`."""
    saved = os.environ.get(ENDPOINT_VARIABLE)
    os.environ[ENDPOINT_VARIABLE] = url
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(ENDPOINT_VARIABLE, None)
        else:
            os.environ[ENDPOINT_VARIABLE] = saved


# -- assertions ---------------------------------------------------------------------------------------


def cache_usage(response: Any) -> tuple[int, int]:
    """(cache-read tokens, cache-write tokens) of a Converse response or stream metadata, an InvokeModel
    body (parsed JSON), or an Anthropic `Message`."""
    usage: Any = response.get("usage") if isinstance(response, Mapping) else getattr(response, "usage", None)
    if usage is None:
        raise AssertionError(f"no usage in {type(response).__name__}: is this a model response?")
    if not isinstance(usage, Mapping):
        usage = usage.model_dump() if hasattr(usage, "model_dump") else vars(usage)
    if "cacheReadInputTokens" in usage or "inputTokens" in usage:  # Converse
        return int(usage.get("cacheReadInputTokens", 0)), int(usage.get("cacheWriteInputTokens", 0))
    return int(usage.get("cache_read_input_tokens") or 0), int(usage.get("cache_creation_input_tokens") or 0)


def assert_cache_hit(response: Any, tokens: int | None = None) -> None:
    """The call read a cached prefix (of exactly `tokens` tokens, when given)."""
    read, written = cache_usage(response)
    if read == 0 or (tokens is not None and read != tokens):
        wanted = "a cache read" if tokens is None else f"a cache read of {tokens} tokens"
        raise AssertionError(f"expected {wanted}; usage has {read} read and {written} written")


def assert_cache_written(response: Any, tokens: int | None = None) -> None:
    """The call wrote a prefix to the cache (exactly `tokens` tokens, when given)."""
    read, written = cache_usage(response)
    if written == 0 or (tokens is not None and written != tokens):
        wanted = "a cache write" if tokens is None else f"a cache write of {tokens} tokens"
        raise AssertionError(f"expected {wanted}; usage has {read} read and {written} written")


# -- the pytest plugin ------------------------------------------------------------------------------


def pytest_addoption(parser: Any) -> None:
    parser.addoption("--cachepoint-engine", choices=ENGINES, default="fake",
                     help="the engine behind the cachepoint_server fixture (default: fake)")  # fmt: skip


def _cachepoint_server(request: Any) -> Iterator[LiveServer]:
    with run_server(request.config.getoption("--cachepoint-engine")) as server:
        yield server


try:
    import pytest
except ImportError:  # the helpers above work without pytest
    pass
else:
    cachepoint_server = pytest.fixture(scope="session", name="cachepoint_server")(_cachepoint_server)
