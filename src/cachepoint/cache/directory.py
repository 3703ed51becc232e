"""The cache directory shared by gateways: which prefixes are cached, until when, and which replica holds
the bytes. The default is none (each gateway's in-memory index is the whole truth); `[cache] directory =
"redis://…"` shares one (`redis_directory.py`), and `mirror.py` keeps each gateway's index in step with it.

Values only here, and the protocol every directory meets; no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cachepoint.cache.index import Entry, RemovalReason
from cachepoint.cache.keys import BlockHash
from cachepoint.types import AccountId, Ttl


class DirectoryUnavailable(Exception):
    """The shared directory could not be asked or told (down, timed out, refused)."""


@dataclass(frozen=True)
class BlobRef:
    """Where a snapshot's bytes are: the replica holding them, and its name for them there."""

    holder: str
    ref: str


@dataclass(frozen=True)
class SharedEntry:
    key: BlockHash
    scope: BlockHash
    num_tokens: int
    ttl: Ttl
    expires_at_s: float  # on the cache's clock
    owner: AccountId
    label: str  # the Region
    blob: BlobRef
    blob_tokens: int  # the whole snapshot's tokens and bytes (an entry may be a prefix of it)
    blob_bytes: int


@dataclass(frozen=True)
class Found:
    """What one lookup found for a request's keys."""

    entries: dict[BlockHash, SharedEntry] = field(default_factory=dict)
    tombstones: dict[BlockHash, RemovalReason] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplicaState:
    """A replica as some gateway last saw it (published for every gateway's cluster view)."""

    name: str
    up: bool
    load: int
    cached_bytes: int
    seen_at_s: float
    seen_by: str


class Directory(Protocol):
    def lookup(self, keys: Sequence[BlockHash]) -> Found:
        """One round trip: the entries (live or not: the caller's clock decides) and tombstones of `keys`."""
        ...

    def scope_live(self, scope: BlockHash, now_s: float) -> bool:
        """Whether any entry of the scope is live (a miss is `prefix-changed` rather than `new`)."""
        ...

    def publish(self, entries: Sequence[SharedEntry], now_s: float) -> None:
        """Insert or replace each entry (atomically per entry), with the store's own expiry at its deadline."""
        ...

    def refresh(self, deadlines: Sequence[tuple[BlockHash, float]], now_s: float) -> None:
        """Hits: move existing entries' deadlines (and the store's expiry) to the given times."""
        ...

    def remove(self, removals: Sequence[tuple[BlockHash, BlobRef, RemovalReason]]) -> None:
        """Drop each entry if it still points at that blob (a newer write of the key is kept); tombstone it."""
        ...

    def drop_holder(self, holder: str, reason: RemovalReason) -> int:
        """Drop every entry whose bytes `holder` held; returns how many."""
        ...

    def report_replicas(self, states: Sequence[ReplicaState]) -> None: ...

    def replicas(self) -> list[ReplicaState]: ...

    def close(self) -> None: ...


class DirectoryDown:
    """The planner's view while the directory is unreachable: nothing is live, every miss says why. Planning
    cold is safe (a read is never promised without the directory); planning from a stale local view is not."""

    def live(self, key: BlockHash, now_s: float) -> Entry | None:
        return None

    def removal_reason(self, key: BlockHash) -> RemovalReason | None:
        return RemovalReason.DIRECTORY_DOWN

    def scope_has_entries(self, scope: BlockHash) -> bool:
        return False
