"""Where snapshot bytes live: RAM (hot, bounded) over an optional disk tier (warm, survives restarts).

The index decides what exists; the store only holds and moves bytes by blob ID:
- `put` keeps a new snapshot in RAM and queues its disk write (off the request path);
- RAM over its budget demotes its least recently used snapshots that are safely on disk (their RAM copy
  goes; the disk copy stays); a snapshot whose write was skipped or failed has nowhere to go and is lost
  (`take_lost` tells the cache, which drops its entries);
- `load` reads a snapshot from disk (blocking: call it off the event loop) and promotes it to RAM when
  it fits without pushing out anything that is not on disk.
Thread-safe: the event loop, a loading thread and the disk writer meet here under one lock.
"""

from __future__ import annotations

import threading
from array import array
from dataclasses import dataclass

from cachepoint.cache.disk import DiskTier, SnapshotRecord
from cachepoint.cache.snapfile import Unreadable
from cachepoint.cache.index import BlobId
from cachepoint.cache.ram import RamTier
from cachepoint.engine.protocol import Snapshot


@dataclass
class StoreStats:
    promotions: int = 0
    demotions: int = 0
    lost: int = 0  # dropped from RAM with no disk copy (its write was skipped or failed)
    load_failures: int = 0


@dataclass(frozen=True)
class Held:
    snapshot: Snapshot
    tokens: array[int]  # the prompt tokens the snapshot holds, checked against each request before a restore


class TieredStore:
    def __init__(self, ram_budget_bytes: int, disk: DiskTier | None = None) -> None:
        self.ram = RamTier(ram_budget_bytes)
        self.disk = disk
        self.stats = StoreStats()
        self._held: dict[BlobId, Held] = {}  # in RAM
        self._records: dict[BlobId, SnapshotRecord] = {}  # every blob the store knows
        self._on_disk: set[BlobId] = set()
        self._pending: set[BlobId] = set()  # disk write queued
        self._lost: list[BlobId] = []
        self._lock = threading.Lock()

    def put(self, record: SnapshotRecord, snapshot: Snapshot, tokens: array[int], *, persist: bool = True) -> None:
        """`persist=False`: a marker of bytes another replica holds; it means nothing after a restart."""
        blob_id = record.blob_id
        with self._lock:
            self._records[blob_id] = record
            self._held[blob_id] = Held(snapshot, tokens)
            self.ram.add(blob_id, _ram_bytes(snapshot))
            if persist and self.disk is not None and self.disk.write(record, tokens, snapshot.data):
                self._pending.add(blob_id)
            self._settle()

    def adopt(self, record: SnapshotRecord) -> None:
        """A snapshot found on disk at start-up."""
        with self._lock:
            self._records[record.blob_id] = record
            self._on_disk.add(record.blob_id)

    def get(self, blob_id: BlobId) -> Held | None:
        """The snapshot if it is in RAM (most recently used from now on), else None."""
        with self._lock:
            self._settle()
            held = self._held.get(blob_id)
            if held is not None:
                self.ram.touch(blob_id)
            return held

    def peek(self, blob_id: BlobId) -> Held | None:
        """The snapshot if it is in RAM, leaving its recency alone (for figures, not for use)."""
        with self._lock:
            return self._held.get(blob_id)

    def on_disk(self, blob_id: BlobId) -> bool:
        with self._lock:
            return blob_id in self._on_disk

    def load(self, blob_id: BlobId) -> Held:
        """Read a snapshot from disk (any thread; blocking) and promote it when RAM has room. Raises `Unreadable`."""
        with self._lock:
            record = self._records.get(blob_id)
        if record is None or self.disk is None:
            raise Unreadable(f"snapshot {blob_id} is not stored")
        try:
            loaded = self.disk.read(blob_id)
        except Unreadable:
            with self._lock:
                self.stats.load_failures += 1
            raise
        data = b"" if record.nominal else loaded.data
        held = Held(Snapshot(data, record.num_tokens, record.num_bytes if record.nominal else None), loaded.tokens)
        with self._lock:
            if blob_id in self._records and blob_id not in self._held and self._fits(_ram_bytes(held.snapshot)):
                self._held[blob_id] = held
                self.ram.add(blob_id, _ram_bytes(held.snapshot))
                self.stats.promotions += 1
                self._settle()
        return held

    def delete(self, blob_id: BlobId) -> None:
        with self._lock:
            known = self._records.pop(blob_id, None) is not None
            self._held.pop(blob_id, None)
            self.ram.remove(blob_id)
            self._on_disk.discard(blob_id)
            self._pending.discard(blob_id)
        if known and self.disk is not None:
            self.disk.delete(blob_id)

    def __len__(self) -> int:
        """Snapshots held, in any tier."""
        with self._lock:
            return len(self._records)

    def take_lost(self) -> list[BlobId]:
        with self._lock:
            self._settle()
            lost, self._lost = self._lost, []
            return lost

    def tier_of(self, blob_id: BlobId) -> str | None:
        with self._lock:
            return "ram" if blob_id in self._held else "disk" if blob_id in self._on_disk else None

    def tiers(self) -> dict[BlobId, str]:
        with self._lock:
            return {b: "ram" if b in self._held else "disk" for b in self._records}

    # -- internals (lock held) ----------------------------------------------------------------------
    def _fits(self, num_bytes: int) -> bool:
        return self.ram.fits(num_bytes, self._movable)

    def _movable(self, blob_id: BlobId) -> bool:
        return blob_id in self._on_disk

    def _settle(self) -> None:
        """Take finished disk writes into account, then bring RAM within its budget."""
        if self.disk is not None:
            for blob_id, ok in self.disk.take_written():
                self._pending.discard(blob_id)
                if ok and blob_id in self._records:
                    self._on_disk.add(blob_id)
        if self.ram.num_bytes <= self.ram.budget_bytes:
            return
        for blob_id in self.ram.victims(0, self._movable):
            self._drop_from_ram(blob_id)
            self.stats.demotions += 1
        if self.ram.num_bytes > self.ram.budget_bytes:  # only snapshots without a disk copy are left
            for blob_id in self.ram.victims(0, lambda b: b not in self._pending):
                self._drop_from_ram(blob_id)
                self._lost.append(blob_id)
                self.stats.lost += 1

    def _drop_from_ram(self, blob_id: BlobId) -> None:
        self._held.pop(blob_id, None)
        self.ram.remove(blob_id)


def _ram_bytes(snapshot: Snapshot) -> int:
    """What a snapshot costs in RAM: its buffer (an engine-held snapshot's marker costs nothing here)."""
    return memoryview(snapshot.data).nbytes
