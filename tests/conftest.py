"""Shared fixtures: a fake engine and services built on it (no model, no network)."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator

import pytest

from cachepoint.api.common import AppServices
from cachepoint.bootstrap import build_services
from cachepoint.engine.fake import FakeEngine
from cachepoint.routing.profiles import ProfileStore
from cachepoint.settings import EngineSettings, Settings


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine(context_tokens=4096)


@pytest.fixture
def fake_services(fake_engine: FakeEngine) -> AppServices:
    settings = Settings(engines={"default": EngineSettings("default", kind="fake")})
    return build_services(settings, engine_factory=lambda _: fake_engine, profiles=ProfileStore(":memory:"))


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """PostgreSQL on loopback, installed and started by the project's own script (idempotent)."""
    done = subprocess.run(["bash", "scripts/services.sh", "postgres"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


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
