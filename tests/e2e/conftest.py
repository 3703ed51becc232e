"""One real server on the real embedded model, shared by every end-to-end test."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from cachepoint.bootstrap import build_services
from cachepoint.clock import FakeClock
from cachepoint.routing.profiles import ProfileStore
from cachepoint.settings import Settings, managed_vllm, settings_from_table
from tests.live import LiveServer, serve

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def llama_clock() -> FakeClock:
    """The server's cache clock: tests tick it instead of sleeping through TTLs."""
    return FakeClock(start_s=time.time())


@pytest.fixture(scope="session")
def clock(llama_clock: FakeClock) -> FakeClock:
    return llama_clock


@pytest.fixture(scope="session")
def live(llama_clock: FakeClock) -> Iterator[LiveServer]:
    services = build_services(Settings(), clock=llama_clock, profiles=ProfileStore(":memory:"))
    with serve(services) as server:
        yield server


@pytest.fixture(scope="session")
def vllm_clock() -> FakeClock:
    return FakeClock(start_s=time.time())


@pytest.fixture(scope="session")
def vllm_live(vllm_clock: FakeClock, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The same server on a real vLLM process (managed by cachepoint, started once for the session)."""
    table = {"server": {"state_dir": str(tmp_path_factory.mktemp("vllm"))}, "engines": {"default": managed_vllm({})}}
    services = build_services(settings_from_table(table), clock=vllm_clock, profiles=ProfileStore(":memory:"))
    with serve(services) as server:
        yield server


@pytest.fixture(scope="session")
def client_for(live: LiveServer) -> Callable[..., Any]:
    return clients_of(live)


def clients_of(live: LiveServer) -> Callable[..., Any]:
    def make(
        access_key: str = "AKIDCACHEPOINTTEST", region: str = "us-east-1", service: str = "bedrock-runtime"
    ) -> Any:
        return boto3.client(
            service,
            endpoint_url=live.url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key="test-secret",
            # parameter_validation off: the server, not botocore, must reject bad input
            config=Config(retries={"total_max_attempts": 1}, read_timeout=120, parameter_validation=False),
        )

    return make


@pytest.fixture(scope="session")
def runtime(client_for: Callable[..., Any]) -> Any:
    return client_for()
