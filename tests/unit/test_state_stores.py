"""The control-plane store on both databases it runs on: this gateway's SQLite file, and a real PostgreSQL
(started by scripts/services.sh) that several gateways share. Same behaviour, same migrations."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cachepoint.errors import ConflictError, ResourceNotFoundError, ServiceUnavailableError
from cachepoint.routing import profiles as profiles_module
from cachepoint.routing.profiles import ProfileStore
from cachepoint.routing.statedb import PostgresDatabase

A, B = "111122223333", "444455556666"
NOW = "2026-11-30T12:00:00Z"


@pytest.fixture(params=["sqlite", "postgresql"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], ProfileStore]:
    """Opens a store on the test's database; every call opens another connection to the same one."""
    if request.param == "sqlite":
        return lambda: ProfileStore(tmp_path / "profiles.sqlite")
    url: str = request.getfixturevalue("postgres_url")
    return lambda: ProfileStore(PostgresDatabase(url))


def create(store: ProfileStore, account: str, name: str) -> str:
    profile = store.create(account, "us-east-1", name, "a profile", "us.m", "m", ("us-east-1", "us-west-2"), NOW)
    return profile.profile_id


def test_profiles_round_trip_per_account(open_store: Callable[[], ProfileStore]) -> None:
    store = open_store()
    pid = create(store, A, "team-a")
    profile = store.get(A, pid)
    assert profile is not None and profile.name == "team-a" and profile.regions == ("us-east-1", "us-west-2")
    assert profile.arn == f"arn:aws:bedrock:us-east-1:{A}:application-inference-profile/{pid}"
    assert store.get(B, pid) is None, "another account never sees it"
    assert [p.profile_id for p in store.list(A)] == [pid] and store.list(B) == []
    with pytest.raises(ConflictError, match="An inference profile named team-a already exists."):
        create(store, A, "team-a")
    create(store, B, "team-a")  # names are unique per account
    store.delete(A, pid)
    assert store.get(A, pid) is None
    with pytest.raises(ResourceNotFoundError):
        store.delete(A, pid)


def test_tags_and_logging_configuration(open_store: Callable[[], ProfileStore]) -> None:
    store = open_store()
    arn = "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/x"
    store.tag(A, arn, {"team": "a", "env": "dev"})
    store.tag(A, arn, {"env": "prod"})
    assert store.tags(A, arn) == {"env": "prod", "team": "a"} and store.tags(B, arn) == {}
    store.untag(A, arn, ["team"])
    assert store.tags(A, arn) == {"env": "prod"}
    assert store.logging(A) == (False, None)
    store.put_logging(A, {"textDataDeliveryEnabled": True})
    assert store.logging(A) == (True, {"textDataDeliveryEnabled": True})
    store.put_logging(A, None)
    assert store.logging(A) == (True, None)


def test_state_outlives_the_connection_and_migrations_run_once(open_store: Callable[[], ProfileStore]) -> None:
    first = open_store()
    pid = create(first, A, "kept")
    first.close()
    second = open_store()  # migrating again is a no-op: the data is still there
    profile = second.get(A, pid)
    assert profile is not None and profile.name == "kept"


def test_gateways_sharing_postgresql_see_each_others_writes(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(profiles_module, "READ_TTL_S", 0.2)
    gateway_a, gateway_b = ProfileStore(PostgresDatabase(postgres_url)), ProfileStore(PostgresDatabase(postgres_url))
    pid = create(gateway_a, A, "shared")
    assert gateway_b.get(A, pid) is not None
    assert gateway_b.logging(A) == (False, None)
    gateway_a.put_logging(A, {"textDataDeliveryEnabled": False})
    assert gateway_b.logging(A) == (False, None), "B's read is cached for READ_TTL_S"
    time.sleep(0.25)
    assert gateway_b.logging(A) == (True, {"textDataDeliveryEnabled": False})
    gateway_b.delete(A, pid)
    time.sleep(0.25)
    assert gateway_a.get(A, pid) is None


def test_an_unreachable_database_is_a_service_error(postgres_server: str) -> None:
    url = re.sub(r":[0-9]+/", ":1/", postgres_server)  # nothing listens on port 1
    with pytest.raises(ServiceUnavailableError, match="The control-plane state store is unavailable."):
        PostgresDatabase(url)
