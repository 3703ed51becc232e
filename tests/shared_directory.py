"""Two gateways' caches sharing one Redis directory, driven as one cache: the cache-core tests run on it.

Requests alternate between the gateways, so each one reads what the other wrote. Snapshots are held by
one replica ("node://shared") that both gateways' calls run on, as with `cachepoint node`: a read planned
by one gateway restores a snapshot another one's request wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from cachepoint.cache.manager import PrefixCache
from cachepoint.cache.mirror import DirectoryMirror
from cachepoint.cache.plan import CachePlan, CacheScope
from cachepoint.cache.redis_directory import RedisDirectory
from cachepoint.clock import Clock
from cachepoint.engine.protocol import Prefilled, Snapshot
from cachepoint.models.spec import CachingRules
from cachepoint.prompt.render import RenderedPrompt

NODE = "node://shared"


class TwoGateways:
    def __init__(self, clock: Clock, budget_bytes: int, redis_url: str, namespace: str, **kwargs: Any) -> None:
        self.gateways = [
            PrefixCache(
                clock, budget_bytes, mirror=DirectoryMirror(RedisDirectory(redis_url, namespace), f"gw{i}"), **kwargs
            )  # fmt: skip
            for i in range(2)
        ]
        self._turn = 0
        self._planned_by: dict[int, PrefixCache] = {}
        self._refs = 0
        self.last = self.gateways[0]

    def plan(self, scope: CacheScope, rendered: RenderedPrompt, rules: CachingRules | None) -> CachePlan:
        self.last = self.gateways[self._turn]
        self._turn = 1 - self._turn
        plan = self.last.plan(replace(scope, runs_on=NODE), rendered, rules)
        self._planned_by[id(plan)] = self.last
        return plan

    def commit(self, plan: CachePlan, prefilled: Prefilled) -> None:
        snapshots = []
        for snapshot in prefilled.snapshots:
            self._refs += 1
            snapshots.append(Snapshot(b"", snapshot.num_tokens, snapshot.num_bytes, holder=NODE, ref=str(self._refs)))
        self._planned_by[id(plan)].commit(plan, replace(prefilled, snapshots=tuple(snapshots)))

    def release(self, plan: CachePlan) -> None:
        self._planned_by.pop(id(plan)).release(plan)

    @property
    def index(self) -> Any:
        return self.last.index

    @property
    def store(self) -> Any:
        return self.last.store

    def close(self) -> None:
        for gateway in self.gateways:
            gateway.close()
            assert gateway.mirror is not None
            gateway.mirror.directory.close()


CacheFactory = Callable[[Clock, int], PrefixCache]
