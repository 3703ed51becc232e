"""Shared fixtures: a fake engine and services built on it (no model, no network)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from cachepoint.api.common import AppServices
from cachepoint.bootstrap import build_services
from cachepoint.engine.fake import FakeEngine
from cachepoint.routing.profiles import ProfileStore
from cachepoint.settings import EngineSettings, Settings


@pytest.fixture(autouse=True)
def _state_in_a_temp_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Profiles, invocation logs and the cache's disk tier of test servers go to a temporary folder per test
    (never the user's): a server never recovers another test's snapshots, and a disk tier has one owner."""
    saved = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg"))
    yield
    if saved is None:
        del os.environ["XDG_DATA_HOME"]
    else:
        os.environ["XDG_DATA_HOME"] = saved


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine(context_tokens=4096)


@pytest.fixture
def fake_services(fake_engine: FakeEngine) -> AppServices:
    settings = Settings(engines={"default": EngineSettings("default", kind="fake")})
    return build_services(settings, engine_factory=lambda _: fake_engine, profiles=ProfileStore(":memory:"))
