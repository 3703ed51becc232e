"""Test servers never keep state in the user's folder: the data folder (XDG_DATA_HOME, where settings put
profiles, logs and the cache's disk tier by default) is a temporary one while each fixture is set up. Here, at
the root, because pytest asks only root plugins about session-scoped fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest


@contextmanager
def data_home(folder: Path) -> Iterator[None]:
    saved = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(folder)
    try:
        yield
    finally:
        if saved is None:
            del os.environ["XDG_DATA_HOME"]
        else:
            os.environ["XDG_DATA_HOME"] = saved


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fixture that outlives one test (a module's or the session's server) gets a data folder of its own: a
    server it builds never shares a disk tier with another, nor recovers another's snapshots."""
    if fixturedef.scope == "function" or fixturedef.argname == "tmp_path_factory":
        return (yield)
    factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")  # pytest prunes old runs' folders
    with data_home(factory.mktemp(f"xdg-{fixturedef.argname}")):
        return (yield)


@pytest.fixture(autouse=True)
def _state_in_a_temp_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """And a folder per test for the servers a test builds itself."""
    with data_home(tmp_path_factory.mktemp("xdg")):
        yield
