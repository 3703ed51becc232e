"""The index as the disk tier's manifest left it: what a restart rebuilds before serving."""

from __future__ import annotations

from cachepoint.cache.disk import Recovery
from cachepoint.cache.index import PrefixIndex, RemovalReason
from cachepoint.cache.store import TieredStore


def rebuild(index: PrefixIndex, store: TieredStore, found: Recovery) -> None:
    """The index as the disk tier's manifest left it (a restart): snapshots, entries, and why others went."""
    for record in found.snapshots:
        index.restore_blob(record.blob_id, record.num_tokens, record.num_bytes, record.owner, record.label)
        store.adopt(record)
    for e in found.entries:
        index.restore_entry(e.key, e.scope, e.num_tokens, e.ttl, e.blob_id, e.expires_at_s)
    for key in found.expired:
        index.remember(key, RemovalReason.TTL)
    for key in found.unreadable:
        index.remember(key, RemovalReason.UNREADABLE)
