"""Per-account control-plane state in SQLite: application inference profiles, resource tags, and the
model-invocation logging configuration.

Schema changes are an append-only list of migrations (applied in order, recorded in `user_version`).
Used from the event loop thread only; SQLite writes are durable when each call returns.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cachepoint.errors import ConflictError, ResourceNotFoundError
from cachepoint.files import FILE_MODE, private_dir, touch_private

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
    def __init__(self, path: Path | str) -> None:
        if str(path) not in _IN_MEMORY:
            _make_private(Path(path))
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._migrate()

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        for number, statement in enumerate(MIGRATIONS[version:], start=version + 1):
            with self._db:
                self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number}")

    def create(self, account_id: str, region: str, name: str, description: str | None, copy_from: str,
               model_id: str, regions: tuple[str, ...], now: str) -> AppProfile:  # fmt: skip
        profile_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))
        arn = f"arn:aws:bedrock:{region}:{account_id}:application-inference-profile/{profile_id}"
        row = (account_id, profile_id, name, description, arn, model_id, json.dumps(regions), copy_from, now, now)
        try:
            self._db.execute("INSERT INTO profiles VALUES (?,?,?,?,?,?,?,?,?,?)", row)
        except sqlite3.IntegrityError:
            raise ConflictError(f"An inference profile named {name} already exists.") from None
        return _profile(row)

    def get(self, account_id: str, profile_id: str) -> AppProfile | None:
        row = self._db.execute(
            "SELECT * FROM profiles WHERE account_id = ? AND profile_id = ?", (account_id, profile_id)
        ).fetchone()
        return _profile(row) if row else None

    def list(self, account_id: str) -> list[AppProfile]:
        rows = self._db.execute("SELECT * FROM profiles WHERE account_id = ? ORDER BY created_at, name", (account_id,))
        return [_profile(r) for r in rows.fetchall()]

    def delete(self, account_id: str, profile_id: str) -> None:
        profile = self.get(account_id, profile_id)
        if profile is None:
            raise ResourceNotFoundError(f"Inference profile {profile_id} not found.")
        with self._db:
            self._db.execute("DELETE FROM profiles WHERE account_id = ? AND profile_id = ?", (account_id, profile_id))
            self._db.execute("DELETE FROM tags WHERE account_id = ? AND arn = ?", (account_id, profile.arn))

    def tag(self, account_id: str, arn: str, tags: dict[str, str]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO tags VALUES (?,?,?,?)", [(account_id, arn, k, v) for k, v in tags.items()]
            )

    def untag(self, account_id: str, arn: str, keys: Sequence[str]) -> None:  # `list` is the method here
        with self._db:
            self._db.executemany(
                "DELETE FROM tags WHERE account_id = ? AND arn = ? AND key = ?", [(account_id, arn, k) for k in keys]
            )

    def tags(self, account_id: str, arn: str) -> dict[str, str]:
        rows = self._db.execute(
            "SELECT key, value FROM tags WHERE account_id = ? AND arn = ? ORDER BY key", (account_id, arn)
        )
        return dict(rows.fetchall())

    def put_logging(self, account_id: str, config: dict[str, Any] | None) -> None:
        """An account's model-invocation logging configuration; None records that it was deleted (logging off)."""
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO logging_configs VALUES (?, ?)",
                (account_id, None if config is None else json.dumps(config)),
            )

    def logging(self, account_id: str) -> tuple[bool, dict[str, Any] | None]:
        """(whether the account ever set one, the configuration or None when deleted)."""
        row = self._db.execute("SELECT config FROM logging_configs WHERE account_id = ?", (account_id,)).fetchone()
        if row is None:
            return False, None
        return True, (json.loads(row[0]) if row[0] is not None else None)

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
