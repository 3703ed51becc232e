"""The cache's figures: entries and bytes per Region and tier (stats page, metrics), the live entries (the
explorer), and how long a request's prefixes sat idle before it came back (hit rate by idle gap)."""

from __future__ import annotations

from cachepoint.cache.index import PrefixIndex
from cachepoint.cache.keys import BlockHash
from cachepoint.cache.plan import CacheStats, LiveEntry, MissCause, Outcome
from cachepoint.cache.planner import Decision
from cachepoint.cache.store import TieredStore


def cache_stats(index: PrefixIndex, store: TieredStore, budget_bytes: int) -> CacheStats:
    entries, sizes = index.totals_by_label()
    return CacheStats(
        entries_by_region=entries,
        bytes_by_region=sizes,
        num_entries=index.num_entries,
        num_snapshots=index.num_blobs,
        num_bytes=index.num_bytes,
        budget_bytes=budget_bytes,
        removals={reason.value: n for reason, n in index.stats.removals.items()},
        quota_evictions_by_account={owner: n for owner, n in index.stats.quota_removals_by_owner.items()},
        tiers=tier_stats(index, store),
    )


def tier_stats(index: PrefixIndex, store: TieredStore) -> dict[str, dict[str, int]]:
    tiers = store.tiers()
    entries = {"ram": 0, "disk": 0}
    for entry in index.entries():
        entries[tiers.get(entry.blob_id, "ram")] += 1
    s, ram_tier, disk = store.stats, store.ram, store.disk
    ram = {"entries": entries["ram"], "bytes": ram_tier.num_bytes, "budget_bytes": ram_tier.budget_bytes,
           "promotions": s.promotions, "demotions": s.demotions, "lost": s.lost}  # fmt: skip
    if disk is None:
        return {"ram": ram}
    d = disk.stats
    on_disk = {"entries": entries["disk"], "files": disk.num_files, "bytes": disk.file_bytes,
               "budget_bytes": disk.budget_bytes, "writes": d.writes, "write_failures": d.write_failures,
               "writes_skipped": d.writes_skipped, "load_failures": s.load_failures}  # fmt: skip
    return {"ram": ram, "disk": on_disk}



def live_entries(index: PrefixIndex, store: TieredStore, now_s: float, limit: int) -> list[LiveEntry]:
    """The most recently used live entries (O(size) over the LRU order; the explorer asks every few seconds)."""
    found: list[LiveEntry] = []
    for key in reversed(index.lru_keys()):
        entry = index.entry(key)
        if entry is None or entry.expires_at_s <= now_s:
            continue
        held = store.peek(entry.blob_id)
        holder = held.snapshot.holder if held is not None else ""
        tier = "replica" if holder else store.tier_of(entry.blob_id) or "ram"
        found.append(LiveEntry(key.hex()[:12], entry.label, holder, entry.owner, entry.model, entry.num_tokens,
                               entry.ttl.value, entry.expires_at_s, entry.last_used_s, entry.hits,
                               index.blob(entry.blob_id).num_bytes, tier))  # fmt: skip
        if len(found) >= limit:
            break
    return found


def reuse_gaps(
    decision: Decision, keys: tuple[BlockHash, ...], index: PrefixIndex, now_s: float
) -> list[tuple[float, bool]]:
    """A request coming back to a prefix: how long it sat idle, and whether it was read (before the hit's touch).
    Misses count when the prefix was there before (expired or evicted), so the gap is known."""
    gaps: list[tuple[float, bool]] = []
    if decision.hit is not None and (entry := index.entry(decision.hit.key)) is not None:
        gaps.append((now_s - entry.last_used_s, True))
    for report in decision.reports:
        if report.outcome is Outcome.WRITTEN and report.cause in (MissCause.EXPIRED, MissCause.EVICTED):
            last = index.last_used_before_removal(keys[report.block_index])
            if last is not None:
                gaps.append((now_s - last, False))
    return gaps


def prefix_of(decision: Decision) -> str:
    """The deepest prefix a request wrote or read, as a short fingerprint (the explorer's and the charts' key)."""
    key = decision.writes[-1].key if decision.writes else decision.hit.key if decision.hit else None
    return key.hex()[:12] if key is not None else ""
