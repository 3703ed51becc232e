"""Per-account control-plane state: application inference profiles, resource tags, and the model-invocation
logging configuration, in SQLite (one gateway) or PostgreSQL (gateways sharing it; see `statedb.py`).

Schema changes are an append-only list of migrations, applied in order on either database. Used from the
event loop thread only; writes are durable when each call returns. With a shared database, the two reads on
every invocation's path (a profile by ID, an account's logging configuration) are cached for `READ_TTL_S`,
so a call never waits on the network for them: another gateway's change takes effect within that time.
"""

from __future__ import annotations

import json
import secrets
import string
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cachepoint.errors import ConflictError, ResourceNotFoundError
from cachepoint.files import FILE_MODE, private_dir, touch_private
from cachepoint.routing.statedb import Database, Duplicate, SqliteDatabase

T = TypeVar("T")
READ_TTL_S = 2.0
MAX_CACHED_READS = 100_000

MIGRATIONS = [
    """CREATE TABLE profiles (
        account_id TEXT NOT NULL, profile_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT,
        arn TEXT NOT NULL, model_id TEXT NOT NULL, regions TEXT NOT NULL, copy_from TEXT NOT NULL,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        PRIMARY KEY (account_id, profile_id), UNIQUE (account_id, name))""",
    """CREATE TABLE tags (
        account_id TEXT NOT NULL, arn TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (account_id, arn, key))""",
    """CREATE TABLE logging_configs (account_id TEXT PRIMARY KEY, config TEXT)""",
]
_ID_ALPHABET = string.ascii_lowercase + string.digits
_IN_MEMORY = ("", ":memory:")  # SQLite's names for a private temporary database: no file to protect


@dataclass(frozen=True)
class AppProfile:
    account_id: str
    profile_id: str
    name: str
    description: str | None
    arn: str
    model_id: str
    regions: tuple[str, ...]
    copy_from: str
    created_at: str
    updated_at: str


class ProfileStore:
    def __init__(self, where: Path | str | Database) -> None:
        """`where`: a SQLite path (or ":memory:"), or an opened `Database`."""
        if isinstance(where, (Path, str)):
            if str(where) not in _IN_MEMORY:
                _make_private(Path(where))
            where = SqliteDatabase(where)
        self._db: Database = where
        self._db.migrate(MIGRATIONS)
        self._reads: dict[tuple[str, str, str], tuple[float, Any]] = {}  # (kind, account, key) → (until, value)

    def _cached(self, key: tuple[str, str, str], load: Callable[[], T]) -> T:
        if not self._db.remote:
            return load()
        now = time.monotonic()
        found = self._reads.get(key)
        if found is not None and found[0] > now:
            value: T = found[1]
            return value
        if len(self._reads) > MAX_CACHED_READS:  # bounded: stale entries go first, then everything
            self._reads = {k: v for k, v in self._reads.items() if v[0] > now}
            if len(self._reads) > MAX_CACHED_READS:
                self._reads.clear()
        value = load()
        self._reads[key] = (now + READ_TTL_S, value)
        return value

    def _forget(self, kind: str, account_id: str, key: str = "") -> None:
        self._reads.pop((kind, account_id, key), None)

    def create(self, account_id: str, region: str, name: str, description: str | None, copy_from: str,
               model_id: str, regions: tuple[str, ...], now: str) -> AppProfile:  # fmt: skip
        profile_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))
        arn = f"arn:aws:bedrock:{region}:{account_id}:application-inference-profile/{profile_id}"
        row = (account_id, profile_id, name, description, arn, model_id, json.dumps(regions), copy_from, now, now)
        try:
            self._db.run("INSERT INTO profiles VALUES (?,?,?,?,?,?,?,?,?,?)", row)
        except Duplicate:
            raise ConflictError(f"An inference profile named {name} already exists.") from None
        return _profile(row)

    def get(self, account_id: str, profile_id: str) -> AppProfile | None:
        def load() -> AppProfile | None:
            rows = self._db.rows(
                "SELECT * FROM profiles WHERE account_id = ? AND profile_id = ?", (account_id, profile_id)
            )
            return _profile(rows[0]) if rows else None

        return self._cached(("profile", account_id, profile_id), load)

    def list(self, account_id: str) -> list[AppProfile]:
        rows = self._db.rows("SELECT * FROM profiles WHERE account_id = ? ORDER BY created_at, name", (account_id,))
        return [_profile(r) for r in rows]

    def delete(self, account_id: str, profile_id: str) -> None:
        self._forget("profile", account_id, profile_id)
        profile = self.get(account_id, profile_id)
        if profile is None:
            raise ResourceNotFoundError(f"Inference profile {profile_id} not found.")
        with self._db.transaction():
            self._db.run("DELETE FROM profiles WHERE account_id = ? AND profile_id = ?", (account_id, profile_id))
            self._db.run("DELETE FROM tags WHERE account_id = ? AND arn = ?", (account_id, profile.arn))
        self._forget("profile", account_id, profile_id)

    def tag(self, account_id: str, arn: str, tags: dict[str, str]) -> None:
        with self._db.transaction():
            self._db.run_many(
                "INSERT INTO tags VALUES (?,?,?,?) "
                "ON CONFLICT (account_id, arn, key) DO UPDATE SET value = excluded.value",
                [(account_id, arn, k, v) for k, v in tags.items()],
            )

    def untag(self, account_id: str, arn: str, keys: Sequence[str]) -> None:  # `list` is the method here
        with self._db.transaction():
            self._db.run_many(
                "DELETE FROM tags WHERE account_id = ? AND arn = ? AND key = ?", [(account_id, arn, k) for k in keys]
            )

    def tags(self, account_id: str, arn: str) -> dict[str, str]:
        rows = self._db.rows(
            "SELECT key, value FROM tags WHERE account_id = ? AND arn = ? ORDER BY key", (account_id, arn)
        )
        return {str(k): str(v) for k, v in rows}

    def put_logging(self, account_id: str, config: dict[str, Any] | None) -> None:
        """An account's model-invocation logging configuration; None records that it was deleted (logging off)."""
        self._db.run(
            "INSERT INTO logging_configs VALUES (?, ?) ON CONFLICT (account_id) DO UPDATE SET config = excluded.config",
            (account_id, None if config is None else json.dumps(config)),
        )
        self._forget("logging", account_id)

    def logging(self, account_id: str) -> tuple[bool, dict[str, Any] | None]:
        """(whether the account ever set one, the configuration or None when deleted)."""

        def load() -> tuple[bool, dict[str, Any] | None]:
            rows = self._db.rows("SELECT config FROM logging_configs WHERE account_id = ?", (account_id,))
            if not rows:
                return False, None
            return True, (json.loads(rows[0][0]) if rows[0][0] is not None else None)

        return self._cached(("logging", account_id, ""), load)

    def close(self) -> None:
        self._db.close()


def _make_private(path: Path) -> None:
    """The database holds account data: 0600 in a 0700 folder. SQLite creates a new database 0644 (less
    the umask) but gives its -wal, -shm and -journal files the database file's mode, so the file is made
    first; the side files of an older, wider database are tightened too."""
    private_dir(path.parent)
    touch_private(path)
    for suffix in ("-wal", "-shm", "-journal"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.chmod(FILE_MODE)


def _profile(row: tuple[Any, ...]) -> AppProfile:
    account, pid, name, description, arn, model_id, regions, copy_from, created, updated = row
    return AppProfile(
        account, pid, name, description, arn, model_id, tuple(json.loads(regions)), copy_from, created, updated
    )
