"""A node's snapshots: the bytes of the prefixes its engine wrote, named by a reference the directory keeps.

The store is the cache's own `TieredStore` (RAM, least recently used first out of its budget). Which
prefixes exist is the gateways' directory's business; the node only keeps bytes, drops the least recently
used when full, and drops what has not been restored for longer than the longest TTL (a directory entry
cannot outlive that without a hit, and every hit restores here).
"""

from __future__ import annotations

import itertools
import threading
import time
from array import array
from collections.abc import Callable, Sequence

from cachepoint.cache.disk import SnapshotRecord
from cachepoint.cache.index import BlobId
from cachepoint.cache.store import Held, TieredStore
from cachepoint.engine.protocol import Snapshot
from cachepoint.types import AccountId, Ttl

IDLE_S = Ttl.ONE_HOUR.seconds + 60


class NodeSnapshots:
    def __init__(self, budget_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = TieredStore(budget_bytes)
        self._clock = clock
        self._ids = itertools.count(1)
        self._last_used: dict[BlobId, float] = {}
        self._lock = threading.Lock()

    def put(self, snapshot: Snapshot, tokens: Sequence[int]) -> str:
        blob = BlobId(next(self._ids))
        record = SnapshotRecord(blob, snapshot.num_tokens, snapshot.num_bytes, False, "", AccountId(""), "")
        self.store.put(record, snapshot, array("i", tokens[: snapshot.num_tokens]))
        with self._lock:
            self._last_used[blob] = self._clock()
        self.sweep()
        return str(blob)

    def get(self, ref: str) -> Held | None:
        blob = BlobId(int(ref)) if ref.isdigit() else None
        held = self.store.get(blob) if blob is not None else None
        if held is not None and blob is not None:
            with self._lock:
                self._last_used[blob] = self._clock()
        return held

    def sweep(self) -> None:
        """Forget what RAM dropped for room, and what nobody restored for longer than any TTL."""
        now = self._clock()
        lost = self.store.take_lost()
        with self._lock:
            for blob in lost:
                self._last_used.pop(blob, None)
            idle = [blob for blob, used in self._last_used.items() if now - used > IDLE_S]
            for blob in idle:
                del self._last_used[blob]
        for blob in lost + idle:
            self.store.delete(blob)

    @property
    def num_snapshots(self) -> int:
        return len(self.store)

    @property
    def num_bytes(self) -> int:
        return self.store.ram.num_bytes
