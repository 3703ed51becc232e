"""Private files and folders: 0600 / 0700 whatever the umask, for the helpers and the profile database."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from cachepoint.files import open_private, private_dir, touch_private
from cachepoint.routing.profiles import ProfileStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0, 0o022, 0o277], ids=["umask0", "umask022", "umask277"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    saved = os.umask(request.param)
    yield request.param
    os.umask(saved)


def test_private_dir_makes_every_missing_folder_0700(tmp_path: Path, umask: int) -> None:
    target = tmp_path / "a" / "b" / "c"
    assert private_dir(target) == target
    assert [mode(p) for p in (tmp_path / "a", tmp_path / "a" / "b", target)] == [0o700] * 3
    assert private_dir(target) == target  # existing: nothing to do


def test_private_dir_leaves_existing_folders_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    private_dir(shared / "mine")
    assert (mode(shared), mode(shared / "mine")) == (0o755, 0o700)


def test_open_private_creates_0600_and_tightens_an_old_wide_file(tmp_path: Path, umask: int) -> None:
    new = tmp_path / "new"
    fd = open_private(new, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.write(fd, b"x")
    os.close(fd)
    old = tmp_path / "old"
    old.write_bytes(b"kept")
    old.chmod(0o644)
    touch_private(old)
    assert (mode(new), mode(old), old.read_bytes()) == (0o600, 0o600, b"kept")


def test_profile_database_and_its_wal_files_are_private(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "state" / "profiles.sqlite"
    store = ProfileStore(path)
    store.put_logging("111122223333", {"textDataDeliveryEnabled": False})
    wal, shm = path.with_name("profiles.sqlite-wal"), path.with_name("profiles.sqlite-shm")
    assert wal.exists() and shm.exists()
    assert {p.name: mode(p) for p in (path, wal, shm)} == dict.fromkeys([path.name, wal.name, shm.name], 0o600)
    assert mode(path.parent) == 0o700
    store.close()
    assert ProfileStore(path).logging("111122223333") == (True, {"textDataDeliveryEnabled": False})


def test_an_older_wide_database_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "profiles.sqlite"
    sqlite3.connect(path).close()
    path.chmod(0o644)
    ProfileStore(path).close()
    assert mode(path) == 0o600


def test_in_memory_profile_stores_make_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in (":memory:", ""):
        store = ProfileStore(name)
        store.put_logging("111122223333", None)
        assert store.logging("111122223333") == (True, None)
    assert os.listdir(tmp_path) == []
