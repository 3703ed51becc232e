"""What the cache decides for one request, and the seam the service talks to.

`PromptCache` contract:
- `plan(scope, rendered, rules)` looks up the longest live written prefix, pins what it will restore,
  and says which offsets to snapshot and what the usage is. It never waits on the engine.
- `commit(plan, snapshots)` stores the snapshots the engine captured at `plan.capture_at` and makes
  the new entries visible. Called once, after prefill.
- `release(plan)` unpins; always called, whether the request succeeded or not.
`NullCache` is caching switched off: every checkpoint reports why it did nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from cachepoint.engine.protocol import Snapshot
from cachepoint.models.spec import CachingRules
from cachepoint.prompt.render import RenderedPrompt
from cachepoint.types import AccountId, RegionId


class Outcome(StrEnum):
    HIT = "hit"  # its prefix was read (it is the hit or lies inside it)
    WRITTEN = "written"
    BELOW_MINIMUM = "skipped-below-minimum"
    OVER_CEILING = "skipped-over-ceiling"
    REGION_DISABLED = "region-disabled"
    NOT_ALLOWED = "not-allowed"
    CACHE_OFF = "cache-off"  # the server runs without a prompt cache ([cache] max_bytes = 0)


class MissCause(StrEnum):
    """Why a written checkpoint found nothing to read."""

    NEW = "new"  # nothing of this account/Region/model was cached
    EXPIRED = "expired"
    EVICTED = "evicted"
    PREFIX_CHANGED = "prefix-changed"  # other prefixes are cached: something before this point differs


@dataclass(frozen=True)
class CheckpointReport:
    """Why one checkpoint did what it did. `num_tokens` is T(k), its cumulative prefix."""

    block_index: int
    num_tokens: int
    ttl: str
    outcome: Outcome
    cause: MissCause | None = None

    def compact(self) -> str:
        parts = [self.outcome.value, str(self.num_tokens), self.ttl] + ([self.cause.value] if self.cause else [])
        return ":".join(parts)


@dataclass(frozen=True)
class CacheScope:
    account_id: AccountId
    region: RegionId
    model_id: str
    caching_enabled: bool = True


@dataclass(frozen=True)
class CachePlan:
    restore: Snapshot | None = None
    restore_tokens: int = 0
    capture_at: tuple[int, ...] = ()
    read_tokens: int = 0
    write_5m_tokens: int = 0
    write_1h_tokens: int = 0
    reports: tuple[CheckpointReport, ...] = ()
    handle: object = field(default=None, compare=False, repr=False)  # the cache's own bookkeeping


@dataclass(frozen=True)
class CacheStats:
    num_entries: int = 0
    num_snapshots: int = 0
    num_bytes: int = 0
    budget_bytes: int = 0
    removals: dict[str, int] = field(default_factory=dict)  # by RemovalReason value: ttl, capacity, quota
    quota_evictions_by_account: dict[str, int] = field(default_factory=dict)  # by the account over its share
    entries_by_region: dict[str, int] = field(default_factory=dict)
    bytes_by_region: dict[str, int] = field(default_factory=dict)


class PromptCache(Protocol):
    def plan(self, scope: CacheScope, rendered: RenderedPrompt, rules: CachingRules | None) -> CachePlan: ...

    def commit(self, plan: CachePlan, snapshots: tuple[Snapshot, ...]) -> None: ...

    def release(self, plan: CachePlan) -> None: ...

    def match_tokens(self, scope: CacheScope, rendered: RenderedPrompt, rules: CachingRules | None) -> int:
        """Query only: how many prompt tokens a request would read in this scope now (routing asks this)."""
        ...

    def stats(self) -> CacheStats: ...


class NullCache:
    def plan(self, scope: CacheScope, rendered: RenderedPrompt, rules: CachingRules | None) -> CachePlan:
        reports = tuple(
            CheckpointReport(b.block_index, b.end_tokens, b.checkpoint.ttl.value, Outcome.CACHE_OFF)
            for b in rendered.boundaries
            if b.checkpoint is not None
        )
        return CachePlan(reports=reports)

    def commit(self, plan: CachePlan, snapshots: tuple[Snapshot, ...]) -> None:
        pass

    def release(self, plan: CachePlan) -> None:
        pass

    def match_tokens(self, scope: CacheScope, rendered: RenderedPrompt, rules: CachingRules | None) -> int:
        return 0

    def stats(self) -> CacheStats:
        return CacheStats()
