"""This gateway's index kept in step with a shared cache directory, key by key, as requests ask.

Before planning, the request's keys are looked up in the directory (one round trip) and the local index is
made to agree: entries written elsewhere come in (their bytes as markers naming the holding replica), deadlines
refreshed elsewhere move, entries gone elsewhere go with the reason the directory kept. The pure planner then
runs on the local index, unchanged. Writes, hits and removals here go to the directory at once (the cache
runs on its own thread when a directory is configured).

While the directory is unreachable, requests are planned cold (`DirectoryDown`): no read is promised that
another gateway may have evicted. Outages and recoveries are logged once each.
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from cachepoint.cache.directory import BlobRef, Directory, DirectoryDown, DirectoryUnavailable, Found, SharedEntry
from cachepoint.cache.disk import SnapshotRecord
from cachepoint.cache.index import BlobId, Entry, PrefixIndex, RemovalReason
from cachepoint.cache.keys import BlockHash
from cachepoint.cache.planner import EntryView
from cachepoint.cache.store import TieredStore
from cachepoint.engine.protocol import Snapshot

log = logging.getLogger(__name__)
T = TypeVar("T")


class ScopeView:
    """The local index, plus what the directory knows of the scope (other prefixes cached elsewhere)."""

    def __init__(self, index: PrefixIndex, scope_live: bool) -> None:
        self._index = index
        self._scope_live = scope_live

    def live(self, key: BlockHash, now_s: float) -> Entry | None:
        return self._index.live(key, now_s)

    def removal_reason(self, key: BlockHash) -> RemovalReason | None:
        return self._index.removal_reason(key)

    def scope_has_entries(self, scope: BlockHash) -> bool:
        return self._scope_live or self._index.scope_has_entries(scope)


class Locations:
    """Where the bytes of blobs held by other processes are (replica and its name for them)."""

    def __init__(self, local_holder: str = "") -> None:
        self.local_holder = local_holder  # this process's name for snapshots it holds itself
        self._refs: dict[BlobId, BlobRef] = {}
        self._remote: dict[BlobRef, BlobId] = {}
        self._dead: list[BlobId] = []

    def ref_of(self, blob_id: BlobId) -> BlobRef:
        return self._refs.get(blob_id) or BlobRef(self.local_holder, str(blob_id))

    def register(self, blob_id: BlobId, ref: BlobRef) -> None:
        self._refs[blob_id] = ref
        self._remote[ref] = blob_id

    def blob_at(self, ref: BlobRef) -> BlobId | None:
        return self._remote.get(ref)

    def held_by(self, holder: str) -> list[BlobId]:
        return [blob for ref, blob in self._remote.items() if ref.holder == holder]

    def freed(self, blob_ids: Iterable[BlobId]) -> None:
        self._dead.extend(blob_ids)

    def settle(self) -> None:
        """Forget freed blobs' locations (after their removals were sent, which needed them)."""
        for blob_id in self._dead:
            ref = self._refs.pop(blob_id, None)
            if ref is not None:
                self._remote.pop(ref, None)
        self._dead.clear()


class DirectoryMirror:
    def __init__(self, directory: Directory, local_holder: str) -> None:
        self.directory = directory
        self.locations = Locations(local_holder)
        self.available = True
        self.failures = 0

    # -- calls ------------------------------------------------------------------------------------
    def call(self, what: Callable[[], T]) -> T | None:
        """Run one directory call; None if the directory is unreachable (logged once per outage)."""
        try:
            result = what()
        except DirectoryUnavailable as error:
            self.failures += 1
            if self.available:
                log.warning("cache directory unreachable (%s): planning cold until it is back", error)
            self.available = False
            return None
        if not self.available:
            log.warning("cache directory reachable again: sharing cache entries")
        self.available = True
        return result

    # -- the cache's calls ------------------------------------------------------------------------
    def view(
        self, index: PrefixIndex, store: TieredStore, seed: BlockHash, keys: Sequence[BlockHash], now_s: float
    ) -> tuple[EntryView, list[BlobId]]:
        """The planner's view for one request's keys (the index, reconciled), and the blobs that freed."""
        directory = self.directory
        found = self.call(lambda: directory.lookup(keys))
        scope_live = self.call(lambda: directory.scope_live(seed, now_s)) if found is not None else None
        if found is None or scope_live is None:
            return DirectoryDown(), []
        freed, lost = self.reconcile(index, store, keys, found, now_s)
        if lost:
            self.call(lambda: directory.remove([(k, ref, RemovalReason.REPLICA_LOST) for k, ref in lost]))
        return ScopeView(index, scope_live), freed

    def publish(self, index: PrefixIndex, keys: Sequence[BlockHash], now_s: float) -> None:
        shared = []
        for key in dict.fromkeys(keys):
            entry = index.entry(key)
            if entry is not None:
                blob = index.blob(entry.blob_id)
                shared.append(SharedEntry(key, entry.scope, entry.num_tokens, entry.ttl, entry.expires_at_s,
                                          entry.owner, entry.label, self.locations.ref_of(entry.blob_id),
                                          blob.num_tokens, blob.num_bytes))  # fmt: skip
        directory = self.directory
        self.call(lambda: directory.publish(shared, now_s))

    def refresh(self, deadlines: Sequence[tuple[BlockHash, float]], now_s: float) -> None:
        directory = self.directory
        self.call(lambda: directory.refresh(deadlines, now_s))

    def drop_holder(self, holder: str) -> None:
        directory = self.directory
        self.call(lambda: directory.drop_holder(holder, RemovalReason.REPLICA_LOST))

    def removed(self, index: PrefixIndex, removed: Sequence[tuple[BlockHash, BlobId]]) -> None:
        """Entries this gateway removed: gone from the directory too (unless written again there since)."""
        reasons = [(key, self.locations.ref_of(blob), index.removal_reason(key) or RemovalReason.CAPACITY)
                   for key, blob in removed]  # fmt: skip
        directory = self.directory
        self.call(lambda: directory.remove(reasons))

    # -- reconciling ------------------------------------------------------------------------------
    def reconcile(
        self, index: PrefixIndex, store: TieredStore, keys: Sequence[BlockHash], found: Found, now_s: float
    ) -> tuple[list[BlobId], list[tuple[BlockHash, BlobRef]]]:
        """Make the local index agree with `found` on `keys`. Returns blobs freed, and directory entries whose
        bytes this process should hold but lost (a restart without them): the caller removes those."""
        freed: list[BlobId] = []
        lost: list[tuple[BlockHash, BlobRef]] = []
        for key in keys:
            shared = found.entries.get(key)
            if shared is None or shared.expires_at_s <= now_s:  # the cache's clock decides, not Redis's
                reason = found.tombstones.get(key) if shared is None else RemovalReason.TTL
                if index.entry(key) is not None:
                    freed += index.remove_entry(key, reason or RemovalReason.CAPACITY)
                elif reason is not None:
                    index.remember(key, reason)
                continue
            blob = self._local_blob(index, store, shared)
            if blob is None:
                lost.append((key, shared.blob))
                freed += index.remove_entry(key, RemovalReason.REPLICA_LOST)
                continue
            local = index.entry(key)
            since_s = shared.expires_at_s - shared.ttl.seconds
            if local is not None and local.blob_id == blob:
                if local.expires_at_s != shared.expires_at_s:
                    index.touch(key, since_s)
            else:
                freed += index.insert(key, shared.scope, shared.num_tokens, shared.ttl, blob, since_s)
        return freed, lost

    def _local_blob(self, index: PrefixIndex, store: TieredStore, shared: SharedEntry) -> BlobId | None:
        if shared.blob.holder == self.locations.local_holder:
            own = BlobId(int(shared.blob.ref)) if shared.blob.ref.isdigit() else None
            return own if own is not None and index.has_blob(own) else None
        blob = self.locations.blob_at(shared.blob)
        if blob is not None and index.has_blob(blob):
            return blob
        blob = index.new_blob(shared.blob_tokens, shared.blob_bytes, shared.owner, shared.label)
        marker = Snapshot(b"", shared.blob_tokens, shared.blob_bytes, holder=shared.blob.holder, ref=shared.blob.ref)
        record = SnapshotRecord(blob, shared.blob_tokens, shared.blob_bytes, True, "", shared.owner, shared.label)
        store.put(record, marker, array("i"), persist=False)  # the holder checks tokens before restoring
        self.locations.register(blob, shared.blob)
        return blob
