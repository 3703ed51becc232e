"""What the cache decides for one request, and the seam the service talks to.

`PromptCache` contract:
- `plan(scope, rendered, rules)` looks up the longest live written prefix, pins what it will restore,
  and says which offsets to snapshot and what the usage is. It never waits on the engine.
- `fetch(plan)` (blocking I/O: call it off the event loop) reads a hit's snapshot from disk when
  `plan.fetch_blob` is set, verifies it, and returns the plan with `restore` set; it raises
  `SnapshotUnavailable` when the bytes are unreadable or their tokens differ from the request's. Then
  `discard(plan, error)` drops that snapshot's entries, `release(plan)` unpins, and a new `plan` misses.
- `commit(plan, prefilled)` stores the snapshots the engine captured at `plan.capture_at` and makes
  the new entries visible; the prefill's figures tell the cache what recomputing costs. Called once.
- `release(plan)` unpins; always called, whether the request succeeded or not.
`NullCache` is caching switched off: every checkpoint reports why it did nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

from cachepoint.engine.protocol import Prefilled, Snapshot
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
    SNAPSHOT_UNREADABLE = "snapshot-unreadable"  # its snapshot was missing, truncated or corrupt
    TOKEN_MISMATCH = "token-mismatch"  # its snapshot's stored tokens differ from the request's
    REPLICA_LOST = "replica-lost"  # the engine replica holding its snapshot died or lost it
    DIRECTORY_DOWN = "directory-down"  # the shared cache directory was unreachable: planned cold
    REGION_SWITCH = "region-switch"  # another destination Region of the profile holds this prefix
    TOOL_CHOICE_CHANGED = "tool-choice-changed"  # Anthropic's rule: these invalidate the messages part only
    THINKING_CHANGED = "thinking-changed"
    IMAGES_CHANGED = "images-changed"


class Tier(StrEnum):
    """Where the bytes of a hit came from. `recomputed`: from nowhere, because restoring them from disk
    would have been slower than computing them again (the usage is still a read: Bedrock's rules decide it)."""

    RAM = "ram"
    DISK = "disk"
    RECOMPUTED = "recomputed"


class SnapshotUnavailable(Exception):
    """A hit's snapshot cannot be restored; `cause` says why (the miss that follows reports it)."""

    def __init__(self, cause: MissCause, detail: str) -> None:
        super().__init__(detail)
        self.cause = cause


@dataclass(frozen=True)
class CheckpointReport:
    """Why one checkpoint did what it did. `num_tokens` is T(k), its cumulative prefix."""

    block_index: int
    num_tokens: int
    ttl: str
    outcome: Outcome
    cause: MissCause | None = None
    tier: Tier | None = None  # hits only

    def compact(self) -> str:
        parts = [self.outcome.value, str(self.num_tokens), self.ttl]
        parts += [self.cause.value] if self.cause else []
        parts += [self.tier.value] if self.tier else []
        return ":".join(parts)


@dataclass(frozen=True)
class CacheScope:
    account_id: AccountId
    region: RegionId
    model_id: str
    caching_enabled: bool = True
    fingerprint: str = ""  # the engine's (model file, template, KV format): part of every key
    runs_on: str = ""  # the replica the call will run on ("" = this process): which snapshots it can restore


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
    fetch_blob: int | None = None  # the hit's bytes are on disk: `fetch` reads them before the engine runs
    prefix: str = ""  # a short fingerprint of the deepest prefix read or written (the explorer's row)
    reuse: tuple[tuple[float, bool], ...] = ()  # (seconds idle since the prefix's last use, read or not)

    @property
    def tier(self) -> Tier | None:
        return next((r.tier for r in self.reports if r.tier is not None), None)


@dataclass(frozen=True)
class Match:
    """What a request would read in a scope now, and which replica holds it ("" = this process)."""

    num_tokens: int = 0
    holder: str = ""


@dataclass(frozen=True)
class LiveEntry:
    """One live entry as the cache explorer shows it."""

    prefix: str  # short fingerprint of its key
    region: str
    holder: str  # "" = this process
    account: str
    model: str
    num_tokens: int
    ttl: str
    expires_at_s: float
    last_used_s: float
    hits: int
    num_bytes: int
    tier: str  # ram, disk, or replica (bytes on another process)


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
    tiers: dict[str, dict[str, int]] = field(default_factory=dict)  # per tier: entries, bytes, promotions…


class PromptCache(Protocol):
    def plan(self, scope: CacheScope, rendered: RenderedPrompt, rules: CachingRules | None) -> CachePlan: ...

    def fetch(self, plan: CachePlan) -> CachePlan: ...

    def discard(self, plan: CachePlan, error: SnapshotUnavailable) -> None: ...

    def commit(self, plan: CachePlan, prefilled: Prefilled) -> None: ...

    def release(self, plan: CachePlan) -> None: ...

    def match(self, scope: CacheScope, rendered: RenderedPrompt, rules: CachingRules | None) -> Match:
        """Query only: what a request would read in this scope now, and where (routing asks this)."""
        ...

    def drop_holder(self, holder: str) -> None:
        """A replica died: the entries whose bytes it held go, explained `replica-lost`."""
        ...

    @property
    def blocking(self) -> bool:
        """Calls wait on the network: the service runs them on one thread of their own."""
        ...

    def stats(self) -> CacheStats: ...

    def entries(self, limit: int) -> list[LiveEntry]:
        """The most recently used live entries, at most `limit`."""
        ...

    def close(self) -> None: ...


class NullCache:
    def plan(self, scope: CacheScope, rendered: RenderedPrompt, rules: CachingRules | None) -> CachePlan:
        reports = tuple(
            CheckpointReport(b.block_index, b.end_tokens, b.checkpoint.label, Outcome.CACHE_OFF)
            for b in rendered.boundaries
            if b.checkpoint is not None
        )
        return CachePlan(reports=reports)

    def fetch(self, plan: CachePlan) -> CachePlan:
        return plan

    def discard(self, plan: CachePlan, error: SnapshotUnavailable) -> None:
        pass

    def commit(self, plan: CachePlan, prefilled: Prefilled) -> None:
        pass

    def release(self, plan: CachePlan) -> None:
        pass

    def match(self, scope: CacheScope, rendered: RenderedPrompt, rules: CachingRules | None) -> Match:
        return Match()

    def drop_holder(self, holder: str) -> None:
        pass

    @property
    def blocking(self) -> bool:
        return False

    def stats(self) -> CacheStats:
        return CacheStats()

    def entries(self, limit: int) -> list[LiveEntry]:
        return []

    def close(self) -> None:
        pass


def region_switch(plan: CachePlan, elsewhere_tokens: int) -> CachePlan:
    """A profile's call routed away from the Region that holds its prefix: the writes that prefix would have
    served miss because of the switch, not because nothing was cached (`new`, `prefix-changed`)."""
    switched = (MissCause.NEW, MissCause.PREFIX_CHANGED)
    reports = tuple(
        replace(r, cause=MissCause.REGION_SWITCH)
        if r.outcome is Outcome.WRITTEN and r.cause in switched and r.num_tokens <= elsewhere_tokens
        else r
        for r in plan.reports
    )
    return plan if reports == plan.reports else replace(plan, reports=reports)
