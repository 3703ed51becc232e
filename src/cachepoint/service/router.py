"""Where a call runs, and what happens when a replica fails: the Region (its policy), the replica within
it (holding the longest cached prefix unless overloaded), a replica marked down with its entries dropped
(`replica-lost`), and an answer that goes on from another replica when its own dies mid-answer."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field, replace

from cachepoint.cache.plan import CachePlan, CacheScope, Match, PromptCache, SnapshotUnavailable
from cachepoint.engine.protocol import EngineEvent, GenerateJob, Prefilled, ReplicaUnavailable
from cachepoint.errors import ServiceUnavailableError, ValidationError
from cachepoint.routing.policy import Candidate, LoadGuard, Policy, choose, choose_replica
from cachepoint.routing.pool import EnginePool
from cachepoint.routing.regions import Region
from cachepoint.routing.replicas import Replica
from cachepoint.service.cachecalls import CacheCalls
from cachepoint.service.calls import PreparedCall

MAX_ATTEMPTS = 4  # replicas tried (or plans made again after a lost snapshot) before giving up
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Routing:
    policy: Policy
    guard: LoadGuard
    rng: random.Random
    per_profile: Mapping[str, Policy] = field(default_factory=dict)
    replica: Policy = choose_replica  # within a Region

    def policy_for(self, model_identifier: str) -> Policy:
        return self.per_profile.get(model_identifier, self.policy)


class Router:
    def __init__(
        self, pools: Mapping[str, EnginePool], cache: PromptCache, calls: CacheCalls, routing: Routing
    ) -> None:
        self.pools = pools
        self.cache = cache
        self.calls = calls
        self.routing = routing

    async def region(self, call: PreparedCall) -> tuple[Region, int, Match | None]:
        """Choose the destination Region (a direct call has one candidate, its own Region), and say how long a
        prefix of this call the other candidates hold (a miss here is then a `region-switch`) and what the chosen
        one holds (None: not looked up), so that choosing its replica asks the cache no second time."""
        pool = self.pools[call.spec.engine]
        up = [r for r in call.target.destinations if not r.down]
        if not up:
            raise ValidationError("None of the model's Regions is available.")
        serving = [r for r in up if any(replica.up for replica in pool.replicas(r.region_id))]
        up = serving or up  # with every replica down everywhere, the Region's own error says so
        if len(up) == 1:  # nothing to rank: skip hashing the prompt once more for a cache lookup
            return up[0], 0, None
        candidates, matches = [], dict[str, Match]()
        for r in up:
            match = await self.calls.run(self.cache.match, self.scope(call, r), call.rendered, call.spec.caching)
            source, caches = r.region_id == call.ctx.region, r.caches(call.spec.model_id)
            candidates.append(Candidate(r.region_id, pool.load(r.region_id), match.num_tokens, source, caches))
            matches[str(r.region_id)] = match
        policy = self.routing.policy_for(call.target.identifier)
        chosen = choose(policy, candidates, self.routing.guard, self.routing.rng)
        elsewhere = max((c.cached_tokens for c in candidates if c.name != chosen.name), default=0)
        return next(r for r in up if r.region_id == chosen.name), elsewhere, matches[chosen.name]

    async def replica(
        self, call: PreparedCall, region: Region, tried: set[str], known: Match | None = None
    ) -> Replica:
        """Within the Region: the live replica holding the longest cached prefix, unless overloaded. `known`: what
        the Region holds, when choosing the Region looked it up already."""
        live = [r for r in self.pools[call.spec.engine].replicas(region.region_id) if r.up and r.name not in tried]
        if len(live) <= 1:
            if not live:
                raise ServiceUnavailableError("No engine replica of this Region is available. Try again later.")
            return live[0]
        match = known
        if match is None:
            match = await self.calls.run(self.cache.match, self.scope(call, region), call.rendered, call.spec.caching)
        candidates = [Candidate(r.name, r.load, match.num_tokens if r.restores(match.holder) else 0) for r in live]
        chosen = self.routing.replica(candidates, self.routing.guard, self.routing.rng)
        return next(r for r in live if r.name == chosen.name)

    def scope(self, call: PreparedCall, region: Region, replica: Replica | None = None) -> CacheScope:
        enabled = region.caches(call.spec.model_id)
        fingerprint = self.pools[call.spec.engine].fingerprint
        runs_on = replica.holder if replica is not None else ""
        return CacheScope(call.ctx.account_id, region.region_id, call.spec.model_id, enabled, fingerprint, runs_on)

    async def failed(self, replica: Replica, plan: CachePlan, error: Exception) -> None:
        if isinstance(error, SnapshotUnavailable):
            await self.calls.run(self.cache.discard, plan, error)
            return
        log.warning("engine replica %s failed (%s): marked down, its cache entries dropped", replica.name, error)
        await self.down(replica, str(error))

    async def down(self, replica: Replica, reason: str) -> None:
        """A replica is gone (a failed call or its health checks): no call goes to it, and the entries whose
        bytes it held are dropped, so the misses that follow say `replica-lost`."""
        replica.up, replica.down_reason = False, reason
        if replica.holder:
            await self.calls.run(self.cache.drop_holder, replica.holder)

    async def resumable(
        self,
        call: PreparedCall,
        region: Region,
        replica: Replica,
        events: AsyncGenerator[EngineEvent, None],
        tried: set[str],
    ) -> AsyncGenerator[EngineEvent, None]:
        """The engine's events; if a remote replica dies mid-answer, the answer goes on from another replica: the
        prompt and the tokens generated so far are its prompt (greedy output continues as it would have), and
        the client sees one answer. Only with no replica left is the call lost."""
        produced: list[int] = []
        prefilled = False
        for _ in range(MAX_ATTEMPTS):
            try:
                async with aclosing(events) as stream:
                    async for event in stream:
                        if isinstance(event, Prefilled):
                            if prefilled:
                                continue  # a continuation's prefill: the call's prompt was prefilled already
                            prefilled = True
                        elif isinstance(event, int):
                            produced.append(event)
                        yield event
                return
            except ReplicaUnavailable as error:
                tried.add(replica.name)
                await self.failed(replica, CachePlan(), error)
                try:
                    replica = await self.replica(call, region, tried)
                except ServiceUnavailableError:
                    break
                events = replica.runner.stream(continuation(call, produced))
        raise ServiceUnavailableError("The engine replica failed mid-response and no other could continue. Try again.")


def continuation(call: PreparedCall, produced: list[int]) -> GenerateJob:
    remaining = (call.sampling.max_tokens or 1) - len(produced)
    return GenerateJob(call.rendered.tokens + tuple(produced), replace(call.sampling, max_tokens=max(remaining, 1)))


async def chain(
    first: EngineEvent | None, rest: AsyncGenerator[EngineEvent, None]
) -> AsyncGenerator[EngineEvent, None]:
    """The engine's events, the first of which may have been read already (closing this closes the stream)."""
    try:
        if first is not None:
            yield first
        async for event in rest:
            yield event
    finally:
        await rest.aclose()
