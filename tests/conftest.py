"""Shared fixtures: a fake engine and services built on it (no model, no network)."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from typing import cast

import pytest

from cachepoint.api.common import AppServices
from cachepoint.bootstrap import build_services
from cachepoint.engine.fake import FakeEngine
from cachepoint.routing.profiles import ProfileStore
from cachepoint.settings import EngineSettings, Settings
from cachepoint.cache.manager import PrefixCache
from cachepoint.clock import Clock
from tests.shared_directory import CacheFactory, TwoGateways


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine(context_tokens=4096)


@pytest.fixture
def fake_services(fake_engine: FakeEngine) -> AppServices:
    settings = Settings(engines={"default": EngineSettings("default", kind="fake")})
    return build_services(settings, engine_factory=lambda _: fake_engine, profiles=ProfileStore(":memory:"))


def service_url(service: str) -> str:
    """A service on loopback, installed and started by the project's own script (idempotent); its URL."""
    done = subprocess.run(["bash", "scripts/services.sh", service], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def postgres_server() -> str:
    return service_url("postgres")


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh database for one test, dropped afterwards."""
    import psycopg

    name = f"test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield postgres_server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def redis_server() -> str:
    return service_url("redis")


@pytest.fixture
def redis_namespace(redis_server: str) -> Iterator[str]:
    """A namespace of its own in the shared Redis for one test, deleted afterwards."""
    import redis

    namespace = f"test-{secrets.token_hex(6)}"
    yield namespace
    client = redis.Redis.from_url(redis_server)
    for key in client.scan_iter(f"{namespace}:*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture(params=["in-memory", "redis"])
def new_cache(request: pytest.FixtureRequest) -> Iterator[CacheFactory]:
    """Makes caches: one gateway's in-memory index, or two gateways sharing a Redis directory."""
    made: list[TwoGateways] = []

    def make(clock: Clock, budget_bytes: int) -> PrefixCache:
        if request.param == "in-memory":
            return PrefixCache(clock, budget_bytes)
        url, namespace = request.getfixturevalue("redis_server"), request.getfixturevalue("redis_namespace")
        made.append(TwoGateways(clock, budget_bytes, url, f"{namespace}-{len(made)}"))
        return cast(PrefixCache, made[-1])

    yield make
    for shared in made:
        shared.close()
