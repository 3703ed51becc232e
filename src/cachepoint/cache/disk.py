"""The disk tier: snapshot files and their manifest, written off the request path, read back after a restart.

Layout under `disk_dir`: `snapshots/<blob>.kv` (a header, the prompt token IDs, the engine's KV bytes) and
`manifest.sqlite` (WAL): a row per snapshot (size, CRC-32, engine fingerprint, owner) and a row per entry
(key, scope, token count, TTL, expiry as wall-clock time). One writer thread applies queued operations in
order, a batch per transaction:
- a snapshot is written to `<blob>.kv.tmp`, fsynced and renamed; only then is its manifest row inserted,
  so a row always names a complete file (a `kill -9` leaves at worst a temporary or unnamed file, which
  recovery deletes);
- entry rows follow their snapshot's row (same queue), so an entry without a snapshot row is a torn write;
- hits update the expiry in place, removals delete rows, freed snapshots lose row and file together.
Reads verify size and checksum and return the stored tokens, so a restore is checked against the request.
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
import time
from array import array
from collections import Counter
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cachepoint.cache.index import BlobId
from cachepoint.cache.keys import BlockHash
from cachepoint.cache.snapfile import Loaded, Unreadable, read_snapshot, write_snapshot
from cachepoint.files import exclusive_lock, private_dir, touch_private
from cachepoint.types import AccountId, Ttl

log = logging.getLogger(__name__)

MAX_BATCH = 256  # operations per transaction
SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    blob_id INTEGER PRIMARY KEY, num_tokens INTEGER NOT NULL, num_bytes INTEGER NOT NULL,
    nominal INTEGER NOT NULL, file_bytes INTEGER NOT NULL, crc32 INTEGER NOT NULL,
    fingerprint TEXT NOT NULL, owner TEXT NOT NULL, label TEXT NOT NULL, written_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    key BLOB PRIMARY KEY, scope BLOB NOT NULL, blob_id INTEGER NOT NULL, num_tokens INTEGER NOT NULL,
    ttl TEXT NOT NULL, expires_at REAL NOT NULL);
"""


@dataclass(frozen=True)
class SnapshotRecord:
    blob_id: BlobId
    num_tokens: int
    num_bytes: int  # what the index counts: the KV bytes, or an engine-held snapshot's nominal size
    nominal: bool  # the engine keeps the KV itself; the file holds only the tokens
    fingerprint: str
    owner: AccountId
    label: str


@dataclass(frozen=True)
class EntryRecord:
    key: BlockHash
    scope: BlockHash
    blob_id: BlobId
    num_tokens: int
    ttl: Ttl
    expires_at_s: float


@dataclass
class Recovery:
    """What a restart found: the snapshots and entries that are still good, and what was dropped, by reason."""

    snapshots: list[SnapshotRecord] = field(default_factory=list)
    entries: list[EntryRecord] = field(default_factory=list)  # least recently used first
    expired: list[BlockHash] = field(default_factory=list)
    unreadable: list[BlockHash] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)  # entries: expired, fingerprint, unreadable, torn
    seconds: float = 0.0


@dataclass
class DiskStats:
    writes: int = 0
    write_failures: int = 0
    writes_skipped: int = 0  # the queue held too many bytes: the snapshot stayed in RAM only
    reads: int = 0
    load_failures: int = 0
    write_s: float = 0.0


@dataclass(frozen=True)
class _Write:
    record: SnapshotRecord
    tokens: array[int]
    data: bytes | memoryview


@dataclass(frozen=True)
class _Entries:
    records: tuple[EntryRecord, ...]


@dataclass(frozen=True)
class _Touch:
    expiries: tuple[tuple[BlockHash, float], ...]


@dataclass(frozen=True)
class _Remove:
    keys: tuple[BlockHash, ...]


@dataclass(frozen=True)
class _Delete:
    blob_id: BlobId


@dataclass(frozen=True)
class _Barrier:
    done: threading.Event


_Op = _Write | _Entries | _Touch | _Remove | _Delete | _Barrier


class DiskTier:
    def __init__(self, directory: Path, budget_bytes: int, max_queued_bytes: int) -> None:
        self.directory = private_dir(directory)
        # one process per disk tier: two writers would hand out the same snapshot numbers
        lock_fd = exclusive_lock(directory / "lock")
        if lock_fd is None:
            raise ValueError(f"[cache] disk_dir {directory} is in use by another cachepoint process; "
                             "give each server its own disk_dir")  # fmt: skip
        self._lock_fd = lock_fd
        self.files = private_dir(directory / "snapshots")
        self.budget_bytes = budget_bytes
        self.max_queued_bytes = max_queued_bytes
        self.stats = DiskStats()
        touch_private(self.directory / "manifest.sqlite")  # SQLite gives its -wal and -shm files this mode
        self._db = sqlite3.connect(self.directory / "manifest.sqlite", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # with WAL: a process crash never loses a commit
        self._db.executescript(SCHEMA)
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._queued_bytes = 0
        self._sizes: dict[BlobId, tuple[int, int]] = {}  # blob → (file bytes, CRC-32) of written files
        self._written: list[tuple[BlobId, bool]] = []  # outcomes not yet taken by the store
        self._batch_done: set[BlobId] = set()  # the writer thread's: writes of the current batch that reported
        self._thread: threading.Thread | None = None

    # -- the writer ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cache-disk-writer", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        self._db.close()
        os.close(self._lock_fd)

    def flush(self, timeout_s: float = 60.0) -> bool:
        """Wait until everything queued so far is on disk."""
        done = threading.Event()
        self._queue.put(_Barrier(done))
        return done.wait(timeout_s)

    def write(self, record: SnapshotRecord, tokens: array[int], data: bytes | memoryview) -> bool:
        """Queue a snapshot; False (nothing queued) when the queue already holds too many bytes."""
        size = memoryview(data).nbytes
        with self._lock:
            if self._queued_bytes + size > self.max_queued_bytes:
                self.stats.writes_skipped += 1
                return False
            self._queued_bytes += size
        self._queue.put(_Write(record, tokens, data))
        return True

    def upsert(self, records: list[EntryRecord]) -> None:
        if records:
            self._queue.put(_Entries(tuple(records)))

    def touch(self, expiries: list[tuple[BlockHash, float]]) -> None:
        if expiries:
            self._queue.put(_Touch(tuple(expiries)))

    def remove(self, keys: list[BlockHash]) -> None:
        if keys:
            self._queue.put(_Remove(tuple(keys)))

    def delete(self, blob_id: BlobId) -> None:
        self._queue.put(_Delete(blob_id))

    def take_written(self) -> list[tuple[BlobId, bool]]:
        """(blob, whether it is on disk) for every queued write that ended since the last call."""
        with self._lock:
            written, self._written = self._written, []
        return written

    @property
    def num_files(self) -> int:
        return len(self._sizes)

    @property
    def file_bytes(self) -> int:
        return sum(size for size, _ in self._sizes.values())

    def _run(self) -> None:
        while (op := self._queue.get()) is not None:
            batch = [op]
            while len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(more)
            self._batch_done = set()
            try:
                self._apply(batch)
            except Exception:  # the writer must outlive any one failure: the next batch may succeed
                log.exception("cache disk tier: a batch of manifest updates failed")
                self._abandon(batch)

    def _abandon(self, batch: list[_Op]) -> None:
        """A failed batch's transaction was rolled back: its snapshots have no row, so they are not on disk
        (their files go), and whoever waits on the batch is released."""
        for op in batch:
            if isinstance(op, _Write):
                with self._lock:
                    landed = self._sizes.pop(op.record.blob_id, None) is not None
                self._path(op.record.blob_id).unlink(missing_ok=True)
                if not landed and op.record.blob_id not in self._batch_done:
                    self._finish(op.record.blob_id, memoryview(op.data).nbytes, ok=False)
            elif isinstance(op, _Barrier):
                op.done.set()

    def _apply(self, batch: list[_Op]) -> None:
        barriers = [op.done for op in batch if isinstance(op, _Barrier)]
        with self._transaction():
            for op in batch:
                if isinstance(op, _Write):
                    self._write(op)
                elif isinstance(op, _Entries):
                    self._db.executemany(
                        "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?)",
                        [(r.key, r.scope, r.blob_id, r.num_tokens, r.ttl.value, r.expires_at_s) for r in op.records],
                    )
                elif isinstance(op, _Touch):
                    self._db.executemany("UPDATE entries SET expires_at = ? WHERE key = ?",
                                         [(expires, key) for key, expires in op.expiries])  # fmt: skip
                elif isinstance(op, _Remove):
                    self._db.executemany("DELETE FROM entries WHERE key = ?", [(k,) for k in op.keys])
                elif isinstance(op, _Delete):
                    self._delete(op.blob_id)
        for done in barriers:
            done.set()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _write(self, op: _Write) -> None:
        record, size = op.record, memoryview(op.data).nbytes
        started = time.perf_counter()
        try:
            file_bytes, crc = write_snapshot(self._path(record.blob_id), op.tokens, op.data)
        except OSError as error:
            log.warning("cache disk tier: snapshot %d not written: %s", record.blob_id, error)
            self.stats.write_failures += 1
            self._finish(record.blob_id, size, ok=False)
            return
        self._db.execute(
            "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (record.blob_id, record.num_tokens, record.num_bytes, int(record.nominal), file_bytes, crc,
             record.fingerprint, record.owner, record.label, time.time()),
        )  # fmt: skip
        self.stats.writes += 1
        self.stats.write_s += time.perf_counter() - started
        with self._lock:
            self._sizes[record.blob_id] = (file_bytes, crc)
        self._finish(record.blob_id, size, ok=True)

    def _finish(self, blob_id: BlobId, size: int, *, ok: bool) -> None:
        with self._lock:
            self._queued_bytes -= size
            self._written.append((blob_id, ok))
        self._batch_done.add(blob_id)

    def _delete(self, blob_id: BlobId) -> None:
        self._db.execute("DELETE FROM snapshots WHERE blob_id = ?", (blob_id,))
        self._db.execute("DELETE FROM entries WHERE blob_id = ?", (blob_id,))
        with self._lock:
            self._sizes.pop(blob_id, None)
        self._path(blob_id).unlink(missing_ok=True)

    def _path(self, blob_id: BlobId) -> Path:
        return self.files / f"{int(blob_id)}.kv"

    # -- reading ------------------------------------------------------------------------------------
    def read(self, blob_id: BlobId) -> Loaded:
        """The snapshot's tokens and bytes, verified (any thread). Raises `Unreadable`."""
        with self._lock:
            expected = self._sizes.get(blob_id)
        if expected is None:
            raise Unreadable(f"snapshot {blob_id} has no file")
        loaded = read_snapshot(self._path(blob_id), *expected)
        self.stats.reads += 1
        return loaded

    # -- recovery -----------------------------------------------------------------------------------
    def recover(self, now_s: float, fingerprints: Collection[str]) -> Recovery:
        """Rebuild from the manifest (before `start`): keep what is complete, live and of a current engine;
        delete the rest, rows and files, and count it."""
        started = time.perf_counter()
        for tmp in self.files.glob("*.tmp"):
            tmp.unlink(missing_ok=True)
        found = Recovery()
        good, why_bad = self._check_snapshots(fingerprints)
        rows = self._db.execute(
            "SELECT key, scope, blob_id, num_tokens, ttl, expires_at FROM entries ORDER BY expires_at"
        ).fetchall()
        keep: set[BlobId] = set()
        for key, scope, blob_id, num_tokens, ttl, expires_at in sorted(rows, key=_last_use):
            reason = "expired" if expires_at <= now_s else why_bad.get(BlobId(blob_id), "")
            if not reason and (blob_id not in good or ttl not in TTLS or num_tokens > good[blob_id].num_tokens):
                reason = "torn"
            if reason:
                found.dropped[reason] += 1
                {"expired": found.expired, "unreadable": found.unreadable}.get(reason, []).append(BlockHash(key))
                continue
            found.entries.append(EntryRecord(key, scope, blob_id, num_tokens, Ttl(ttl), expires_at))
            keep.add(BlobId(blob_id))
        found.snapshots = [record for blob_id, record in good.items() if blob_id in keep]
        self._prune(keep, [r.key for r in found.entries])
        found.seconds = time.perf_counter() - started
        return found

    def _check_snapshots(self, fingerprints: Collection[str]) -> tuple[dict[BlobId, SnapshotRecord], dict[BlobId, str]]:
        good: dict[BlobId, SnapshotRecord] = {}
        bad: dict[BlobId, str] = {}
        rows = self._db.execute("SELECT blob_id, num_tokens, num_bytes, nominal, file_bytes, crc32, fingerprint, "
                                "owner, label FROM snapshots").fetchall()  # fmt: skip
        for blob_id, num_tokens, num_bytes, nominal, file_bytes, crc, fingerprint, owner, label in rows:
            blob = BlobId(blob_id)
            if fingerprint not in fingerprints:
                bad[blob] = "fingerprint"
                continue
            try:
                size = self._path(blob).stat().st_size
            except OSError:
                size = -1
            if size != file_bytes:
                bad[blob] = "unreadable"
                continue
            good[blob] = SnapshotRecord(
                blob, num_tokens, num_bytes, bool(nominal), fingerprint, AccountId(owner), label
            )
            self._sizes[blob] = (file_bytes, crc)
        return good, bad

    def _prune(self, keep: set[BlobId], live_keys: list[BlockHash]) -> None:
        """Delete every row and file recovery did not keep (orphan files too)."""
        with self._transaction():
            self._db.execute("CREATE TEMP TABLE IF NOT EXISTS keep_blobs (blob_id INTEGER PRIMARY KEY)")
            self._db.execute("CREATE TEMP TABLE IF NOT EXISTS keep_keys (key BLOB PRIMARY KEY)")
            self._db.execute("DELETE FROM keep_blobs")
            self._db.execute("DELETE FROM keep_keys")
            self._db.executemany("INSERT INTO keep_blobs VALUES (?)", [(b,) for b in keep])
            self._db.executemany("INSERT INTO keep_keys VALUES (?)", [(k,) for k in live_keys])
            self._db.execute("DELETE FROM snapshots WHERE blob_id NOT IN (SELECT blob_id FROM keep_blobs)")
            self._db.execute("DELETE FROM entries WHERE key NOT IN (SELECT key FROM keep_keys)")
        for blob in [b for b in self._sizes if b not in keep]:
            del self._sizes[blob]
        for path in self.files.glob("*.kv"):
            if not path.stem.isdigit() or BlobId(int(path.stem)) not in keep:
                path.unlink(missing_ok=True)


TTLS = {ttl.value: ttl for ttl in Ttl}


def _last_use(row: tuple[bytes, bytes, int, int, str, float]) -> float:
    """An entry's last use is its expiry less its TTL: listing by it restores the LRU order."""
    return row[5] - (TTLS[row[4]].seconds if row[4] in TTLS else 0)
