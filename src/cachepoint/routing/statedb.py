"""Where control-plane state lives: a local SQLite file (one gateway), or PostgreSQL shared by every gateway
(`[state] url = "postgresql://…"`). The store above writes one SQL dialect, the part both speak (`?`
placeholders, `INSERT … ON CONFLICT … DO UPDATE`); this module runs it and speaks for each database:
- schema versions: SQLite's `user_version`, or a `schema_version` row in PostgreSQL, migrated under an
  advisory lock so gateways starting together migrate once;
- a unique-key clash is `Duplicate`; a database that cannot be reached is `ServiceUnavailableError`;
- PostgreSQL reconnects on the next call after its connection broke (a restart, a failover).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import psycopg

from cachepoint.errors import ServiceUnavailableError

Row = tuple[Any, ...]
MIGRATION_LOCK = 0x63616368  # any constant: one advisory lock for cachepoint's migrations
CONNECT_TIMEOUT_S = 5


class Duplicate(Exception):
    """A row with the same unique key exists."""


class Database(Protocol):
    remote: bool  # shared with other gateways: reads may be cached briefly, writes of others land anytime

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def run(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def run_many(self, sql: str, params: Sequence[Sequence[Any]]) -> None: ...

    def transaction(self) -> Any:  # a context manager
        ...

    def migrate(self, migrations: Sequence[str]) -> None: ...

    def close(self) -> None: ...


class SqliteDatabase:
    remote = False

    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._db.execute(sql, params).fetchall()

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        try:
            self._db.execute(sql, params)
        except sqlite3.IntegrityError as error:
            raise Duplicate(str(error)) from None

    def run_many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        self._db.executemany(sql, params)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._db:
            self._db.execute("BEGIN")
            yield

    def migrate(self, migrations: Sequence[str]) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        for number, statement in enumerate(migrations[version:], start=version + 1):
            with self.transaction():
                self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number}")

    def close(self) -> None:
        self._db.close()


class PostgresDatabase:
    remote = True

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: psycopg.Connection[Row] | None = None
        self._connection()  # fail at start-up, not at the first request, if the URL is wrong

    def _connection(self) -> psycopg.Connection[Row]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            try:
                self._conn = psycopg.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
            except psycopg.OperationalError as error:
                raise ServiceUnavailableError("The control-plane state store is unavailable.") from error
        return self._conn

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._errors():
            return self._connection().execute(_pg(sql), params).fetchall()

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self._errors():
            self._connection().execute(_pg(sql), params)

    def run_many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        with self._errors():
            self._connection().cursor().executemany(_pg(sql), params)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._errors(), self._connection().transaction():
            yield

    def migrate(self, migrations: Sequence[str]) -> None:
        with self.transaction():
            self.run("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            self.run("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            found = self.rows("SELECT version FROM schema_version")
            version = found[0][0] if found else 0
            if not found:
                self.run("INSERT INTO schema_version VALUES (0)")
            for number, statement in enumerate(migrations[version:], start=version + 1):
                self.run(statement)
                self.run("UPDATE schema_version SET version = ?", (number,))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except psycopg.errors.UniqueViolation as error:
            raise Duplicate(str(error)) from None
        except psycopg.OperationalError as error:
            raise ServiceUnavailableError("The control-plane state store is unavailable.") from error


def _pg(sql: str) -> str:
    """The store's `?` placeholders in psycopg's style (the store's SQL has no other `?` or `%`)."""
    return sql.replace("%", "%%").replace("?", "%s")
