"""Which snapshots keep their bytes in RAM: least recently used first, within a byte budget (pure).

The disk tier holds every snapshot once written; RAM holds the hot ones. Making room in RAM takes the
least recently used snapshots whose bytes are safe elsewhere (`movable`): a snapshot whose disk write is
still queued stays until it lands, so a demotion never loses bytes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from cachepoint.cache.index import BlobId


class RamTier:
    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._lru: OrderedDict[BlobId, int] = OrderedDict()  # blob → bytes, least recently used first
        self.num_bytes = 0

    def __contains__(self, blob_id: object) -> bool:
        return blob_id in self._lru

    def __len__(self) -> int:
        return len(self._lru)

    def add(self, blob_id: BlobId, num_bytes: int) -> None:
        self.remove(blob_id)
        self._lru[blob_id] = num_bytes
        self.num_bytes += num_bytes

    def touch(self, blob_id: BlobId) -> None:
        if blob_id in self._lru:
            self._lru.move_to_end(blob_id)

    def remove(self, blob_id: BlobId) -> bool:
        num_bytes = self._lru.pop(blob_id, None)
        if num_bytes is None:
            return False
        self.num_bytes -= num_bytes
        return True

    def fits(self, num_bytes: int, movable: Callable[[BlobId], bool]) -> bool:
        """Whether `num_bytes` more would fit once every movable snapshot left."""
        held = sum(n for b, n in self._lru.items() if not movable(b))
        return held + num_bytes <= self.budget_bytes

    def victims(self, room: int, movable: Callable[[BlobId], bool]) -> list[BlobId]:
        """Movable snapshots to take out, least recently used first, so that `room` more bytes fit (as
        many as can be found: the caller decides what to do if that is not enough)."""
        excess = self.num_bytes + room - self.budget_bytes
        chosen: list[BlobId] = []
        for blob_id, num_bytes in self._lru.items():
            if excess <= 0:
                break
            if movable(blob_id):
                chosen.append(blob_id)
                excess -= num_bytes
        return chosen

    def lru(self) -> list[BlobId]:
        return list(self._lru)
