"""Shared fixtures: a fake engine and services built on it (no model, no network)."""

from __future__ import annotations

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
