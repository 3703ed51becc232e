"""The cluster as one gateway sees it: every Region's replicas per engine, and what other gateways published."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from cachepoint.cache.manager import PrefixCache
from cachepoint.routing.replicas import Replica
from cachepoint.service.inference import InferenceService


async def cluster_view(inference: InferenceService, gateway: str) -> dict[str, Any]:
    regions: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for engine, pool in inference.pools.items():
        for region, replicas in pool.all_replicas().items():
            regions.setdefault(region, {})[engine] = [_replica(r) for r in replicas]
    view: dict[str, Any] = {"gateway": gateway, "regions": regions, "directory": None}
    cache = inference.cache
    mirror = cache.mirror if isinstance(cache, PrefixCache) else None
    if mirror is not None:
        directory = mirror.directory
        published = await inference.on_cache_thread(mirror.call, directory.replicas)
        view["directory"] = {
            "available": mirror.available,
            "failures": mirror.failures,
            "replicas": [asdict(state) for state in published or []],
        }
    return view


def _replica(replica: Replica) -> dict[str, Any]:
    return {
        "name": replica.name,
        "up": replica.up,
        "load": replica.load,
        # a remote replica's own figures; this process's snapshots are the cache's (see /cachepoint/cache)
        "cached_bytes": replica.cached_bytes if replica.remote else None,
        "snapshots": replica.num_snapshots if replica.remote else None,
        "checked_at": replica.checked_at_s,
        "down_reason": replica.down_reason or None,
        "holds_bytes_in": replica.holder or "this process",
    }
