"""Where snapshot bytes live, behind a small protocol so a shared store (e.g. Redis) can replace RAM.

The index decides what exists; the store only holds bytes by blob ID.
"""

from __future__ import annotations

from typing import Protocol

from cachepoint.cache.index import BlobId
from cachepoint.engine.protocol import Snapshot


class SnapshotStore(Protocol):
    def put(self, blob_id: BlobId, snapshot: Snapshot) -> None: ...

    def get(self, blob_id: BlobId) -> Snapshot: ...

    def delete(self, blob_id: BlobId) -> None: ...


class MemoryStore:
    def __init__(self) -> None:
        self._snapshots: dict[BlobId, Snapshot] = {}

    def put(self, blob_id: BlobId, snapshot: Snapshot) -> None:
        self._snapshots[blob_id] = snapshot

    def get(self, blob_id: BlobId) -> Snapshot:
        return self._snapshots[blob_id]

    def delete(self, blob_id: BlobId) -> None:
        self._snapshots.pop(blob_id, None)

    def __len__(self) -> int:
        return len(self._snapshots)
