"""The cache's figures for the operator's stats page and the metrics: entries and bytes per Region and tier."""

from __future__ import annotations

from cachepoint.cache.index import PrefixIndex
from cachepoint.cache.plan import CacheStats
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

