"""Health checks of a gateway's `cachepoint node` replicas, and what the cluster view shows.

Every `interval_s` each node is asked for its health (load, snapshots, bytes, engine fingerprints). After
`down_after` failed checks in a row (or one failed call) it is marked down and the entries whose bytes it held
are dropped (`replica-lost`); a node whose engine fingerprint differs from the gateway's is down too (its
snapshots could not be restored). A passing check brings it back. What each gateway sees is published to
the shared directory, so `/cachepoint/cluster` shows every gateway's view.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from cachepoint.cache.directory import ReplicaState
from cachepoint.clock import Clock
from cachepoint.cluster.client import NodeRunner
from cachepoint.routing.pool import EnginePool
from cachepoint.routing.replicas import Replica

log = logging.getLogger(__name__)
OnDown = Callable[[Replica, str], Awaitable[None]]
Publish = Callable[[list[ReplicaState]], Awaitable[None]]


class HealthMonitor:
    def __init__(
        self,
        pools: Mapping[str, EnginePool],
        on_down: OnDown,
        clock: Clock,
        *,
        name: str,
        interval_s: float = 1.0,
        down_after: int = 2,
        publish: Publish | None = None,
    ) -> None:
        self.pools = pools
        self.on_down = on_down
        self.clock = clock
        self.name = name
        self.interval_s = interval_s
        self.down_after = down_after
        self.publish = publish

    def nodes(self) -> list[tuple[EnginePool, Replica]]:
        return [
            (pool, replica)
            for pool in self.pools.values()
            for replicas in pool.all_replicas().values()
            for replica in replicas
            if isinstance(replica.runner, NodeRunner)
        ]

    async def run(self) -> None:
        while True:
            await self.check_once()
            await asyncio.sleep(self.interval_s)

    async def check_once(self) -> None:
        nodes = self.nodes()
        if not nodes:
            return
        await asyncio.gather(*(self._check(pool, replica) for pool, replica in nodes))
        if self.publish is not None:
            states = [ReplicaState(r.name, r.up, r.load, r.cached_bytes, r.checked_at_s or 0.0, self.name)
                      for _, r in nodes]  # fmt: skip
            await self.publish(states)

    async def _check(self, pool: EnginePool, replica: Replica) -> None:
        runner = replica.runner
        assert isinstance(runner, NodeRunner)
        try:
            report = await runner.health()
            problem = _mismatch(report, pool.settings.name, pool.fingerprint)
        except Exception as error:  # any failure counts: refused, timed out, garbage
            problem = f"health check failed: {type(error).__name__}: {error}"
            report = None
        if problem is None and report is not None:
            self._passed(replica, report)
            return
        replica.failures += 1
        if replica.up and (replica.failures >= self.down_after or report is not None):
            log.warning("replica %s is down: %s", replica.name, problem)
            await self.on_down(replica, problem or "")

    def _passed(self, replica: Replica, report: Mapping[str, Any]) -> None:
        if not replica.up:
            log.warning("replica %s is up again", replica.name)
        replica.up, replica.failures, replica.down_reason = True, 0, ""
        replica.remote_load = _int(report.get("load"))
        replica.cached_bytes = _int(report.get("cached_bytes"))
        replica.num_snapshots = _int(report.get("snapshots"))
        replica.checked_at_s = self.clock.now_s()


def _mismatch(report: Mapping[str, Any], engine: str, fingerprint: str) -> str | None:
    engines = report.get("engines")
    if not isinstance(engines, dict) or engine not in engines:
        return f"the node does not serve engine {engine!r}"
    if fingerprint and engines[engine] != fingerprint:
        return f"the node's engine {engine!r} differs from this gateway's (fingerprint {engines[engine]!r})"
    return None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
