"""The pure prefix index: entries (one per written checkpoint prefix) pointing into refcounted blobs.

A blob is one KV snapshot, taken at the last checkpoint a request wrote; every entry of that write
(and every older entry of the same chain, re-homed onto it) points into it, because a longer
snapshot serves any shorter prefix of itself. So nested checkpoints never store tokens twice.

Two independent removal axes:
- TTL: `expires_at_s = last use + ttl`, refreshed by `touch`; `expire(now)` drops what is due.
- capacity: `evict_to(budget)` drops least-recently-used unpinned entries until the live blobs fit.
Removing an entry frees its blob when no entry points into it any more; mutating calls return the
freed blob IDs so the owner can drop their bytes. No I/O, no clock: `now` is always an argument.
"""

from __future__ import annotations

import heapq
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NewType

from cachepoint.cache.keys import BlockHash
from cachepoint.types import Ttl

BlobId = NewType("BlobId", int)
MAX_TOMBSTONES = 10_000


class RemovalReason(StrEnum):
    TTL = "ttl"
    CAPACITY = "capacity"


@dataclass
class Entry:
    key: BlockHash
    scope: BlockHash
    num_tokens: int
    ttl: Ttl
    expires_at_s: float
    blob_id: BlobId
    pins: int = 0
    label: str = ""  # the Region, for per-Region figures


@dataclass
class Blob:
    blob_id: BlobId
    num_tokens: int
    num_bytes: int
    refs: int = 0
    label: str = ""


@dataclass
class IndexStats:
    removals: Counter[RemovalReason] = field(default_factory=Counter)


class PrefixIndex:
    def __init__(self) -> None:
        self._entries: dict[BlockHash, Entry] = {}
        self._lru: OrderedDict[BlockHash, None] = OrderedDict()  # least recently used first
        self._deadlines: list[tuple[float, BlockHash]] = []  # heap; stale items skipped lazily
        self._blobs: dict[BlobId, Blob] = {}
        self._scopes: dict[BlockHash, set[BlockHash]] = {}
        self._tombstones: OrderedDict[BlockHash, RemovalReason] = OrderedDict()
        self._next_blob_id = 1
        self.num_bytes = 0
        self.stats = IndexStats()

    # -- queries (no side effects) -------------------------------------------------------------
    def live(self, key: BlockHash, now_s: float) -> Entry | None:
        entry = self._entries.get(key)
        return entry if entry is not None and now_s < entry.expires_at_s else None

    def removal_reason(self, key: BlockHash) -> RemovalReason | None:
        return self._tombstones.get(key)

    def scope_has_entries(self, scope: BlockHash) -> bool:
        return bool(self._scopes.get(scope))

    def blob(self, blob_id: BlobId) -> Blob:
        return self._blobs[blob_id]

    @property
    def num_entries(self) -> int:
        return len(self._entries)

    @property
    def num_blobs(self) -> int:
        return len(self._blobs)

    def lru_keys(self) -> list[BlockHash]:
        return list(self._lru)

    def totals_by_label(self) -> tuple[dict[str, int], dict[str, int]]:
        """(entries, bytes) per label; O(size), for scrapes and stats pages."""
        entries: Counter[str] = Counter(e.label for e in self._entries.values())
        sizes: Counter[str] = Counter()
        for blob in self._blobs.values():
            sizes[blob.label] += blob.num_bytes
        return dict(entries), dict(sizes)

    # -- mutations ------------------------------------------------------------------------------
    def new_blob(self, num_tokens: int, num_bytes: int, label: str = "") -> BlobId:
        blob_id = BlobId(self._next_blob_id)
        self._next_blob_id += 1
        self._blobs[blob_id] = Blob(blob_id, num_tokens, num_bytes, label=label)
        self.num_bytes += num_bytes
        return blob_id

    def insert(
        self, key: BlockHash, scope: BlockHash, num_tokens: int, ttl: Ttl, blob_id: BlobId, now_s: float
    ) -> list[BlobId]:
        """Create (or replace) the entry for `key`; returns blobs freed by the replacement."""
        blob = self._blobs[blob_id]
        assert num_tokens <= blob.num_tokens, "an entry must lie within its blob"
        blob.refs += 1  # before dropping a replaced entry, which may share this blob
        freed = self._drop(key) if key in self._entries else []
        entry = Entry(key, scope, num_tokens, ttl, now_s + ttl.seconds, blob_id, pins=0, label=blob.label)
        self._entries[key] = entry
        self._lru[key] = None
        self._scopes.setdefault(scope, set()).add(key)
        self._tombstones.pop(key, None)
        heapq.heappush(self._deadlines, (entry.expires_at_s, key))
        return freed

    def rehome(self, key: BlockHash, blob_id: BlobId) -> list[BlobId]:
        """Point an existing entry into a newer blob that also holds its prefix; frees the old one if unused."""
        entry = self._entries[key]
        if entry.blob_id == blob_id:
            return []
        assert entry.num_tokens <= self._blobs[blob_id].num_tokens
        old = entry.blob_id
        entry.blob_id = blob_id
        self._blobs[blob_id].refs += 1
        return self._release_blob(old)

    def touch(self, key: BlockHash, now_s: float) -> None:
        """A hit: the TTL restarts from now (free refresh) and the entry becomes most recently used."""
        entry = self._entries[key]
        entry.expires_at_s = now_s + entry.ttl.seconds
        self._lru.move_to_end(key)
        heapq.heappush(self._deadlines, (entry.expires_at_s, key))

    def pin(self, key: BlockHash) -> None:
        self._entries[key].pins += 1

    def unpin(self, key: BlockHash) -> None:
        entry = self._entries.get(key)
        if entry is not None:  # it may have expired while in use; pins protect from capacity only
            assert entry.pins > 0, "unpin without pin"
            entry.pins -= 1

    def expire(self, now_s: float) -> list[BlobId]:
        freed: list[BlobId] = []
        while self._deadlines and self._deadlines[0][0] <= now_s:
            deadline, key = heapq.heappop(self._deadlines)
            entry = self._entries.get(key)
            if entry is not None and entry.expires_at_s == deadline:
                freed += self._remove(key, RemovalReason.TTL)
        return freed

    def evict_to(self, budget_bytes: int) -> list[BlobId]:
        """Drop least-recently-used unpinned entries until the live blobs fit the budget."""
        freed: list[BlobId] = []
        for key in list(self._lru):
            if self.num_bytes <= budget_bytes:
                break
            if self._entries[key].pins == 0:
                freed += self._remove(key, RemovalReason.CAPACITY)
        return freed

    def drop_blob_if_unused(self, blob_id: BlobId) -> list[BlobId]:
        return self._release_blob(blob_id, decrement=False)

    # -- internals ------------------------------------------------------------------------------
    def _remove(self, key: BlockHash, reason: RemovalReason) -> list[BlobId]:
        self.stats.removals[reason] += 1
        self._tombstones[key] = reason
        if len(self._tombstones) > MAX_TOMBSTONES:
            self._tombstones.popitem(last=False)
        return self._drop(key)

    def _drop(self, key: BlockHash) -> list[BlobId]:
        entry = self._entries.pop(key)
        del self._lru[key]
        scope_keys = self._scopes[entry.scope]
        scope_keys.discard(key)
        if not scope_keys:
            del self._scopes[entry.scope]
        return self._release_blob(entry.blob_id)

    def _release_blob(self, blob_id: BlobId, *, decrement: bool = True) -> list[BlobId]:
        blob = self._blobs[blob_id]
        blob.refs -= 1 if decrement else 0
        if blob.refs > 0:
            return []
        del self._blobs[blob_id]
        self.num_bytes -= blob.num_bytes
        return [blob_id]

    def check_integrity(self) -> None:
        """Cheap invariants; tests call it after every operation."""
        refs = Counter(e.blob_id for e in self._entries.values())
        assert set(self._lru) == set(self._entries), "LRU and entries disagree"
        assert refs == Counter({b: blob.refs for b, blob in self._blobs.items()}), "blob ref counts are wrong"
        assert self.num_bytes == sum(b.num_bytes for b in self._blobs.values()), "byte total drifted"
        assert all(e.pins >= 0 and e.num_tokens <= self._blobs[e.blob_id].num_tokens for e in self._entries.values())
        assert {k for keys in self._scopes.values() for k in keys} == set(self._entries), "scope sets drifted"
        live_deadlines = {(e.expires_at_s, k) for k, e in self._entries.items()}
        assert live_deadlines <= set(self._deadlines), "an entry has no deadline record"
