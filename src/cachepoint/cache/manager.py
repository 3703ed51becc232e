"""PrefixCache: the real PromptCache, gluing keys, the pure index and planner, and the snapshot store.

Runs on the event loop thread only (plan/commit/release are quick and never wait on the engine), so
it needs no lock. "now" is read once per operation from the injected clock.

Per-account shares of the budget (`max_account_share`), so one account's writes cannot evict another's
live entries (a noisy neighbour costs both money and latency). Design decisions:
- An account may hold `max_account_share × budget_bytes` while another account holds entries. A lone
  account may use the whole budget: shares protect accounts from each other, so a single-tenant server
  loses nothing, whatever the share. The default, 0.5, therefore only matters once a second account
  caches something; 1.0 lets any account fill the whole budget.
- Eviction order on commit: (1) the writer, if over its share, loses its own least-recently-used
  unpinned entries until it fits (reason quota); (2) while the total is over budget, accounts over their
  share lose theirs, LRU among them (quota); (3) only then global LRU (capacity). So an account within
  its share never loses an entry to make room while another account holds unpinned entries over its
  share. Pinned entries are never evicted, so an account can stay over its share on pinned entries.
- Other accounts are trimmed lazily: an account that grew while alone (or that pins kept over its
  share) is not cut back the moment a second account appears; its surplus is first in line when room
  is needed and goes at its own next write. Cutting it back eagerly would discard hits that nobody
  needed the room for.
- A snapshot larger than what its account may hold (its share, or the budget when alone) is not stored.
- Quota removals are counted per account over its quota, which is always the owner of what was removed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cachepoint.cache.index import BlobId, PrefixIndex
from cachepoint.cache.keys import BlockHash, chain_keys, scope_seed
from cachepoint.cache.plan import CachePlan, CacheScope, CacheStats, Outcome
from cachepoint.cache.planner import Decision, decide, disabled_reports, longest_hit
from cachepoint.cache.store import MemoryStore, SnapshotStore
from cachepoint.clock import Clock
from cachepoint.engine.protocol import Snapshot
from cachepoint.models.spec import CachingRules
from cachepoint.prompt.render import RenderedPrompt
from cachepoint.types import AccountId

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Handle:
    scope: BlockHash
    keys: tuple[BlockHash, ...]
    decision: Decision
    region: str
    account: AccountId


class PrefixCache:
    def __init__(
        self, clock: Clock, budget_bytes: int, store: SnapshotStore | None = None, max_account_share: float = 0.5
    ) -> None:
        if not 0.0 < max_account_share <= 1.0:
            raise ValueError(f"max_account_share must be in (0, 1], not {max_account_share}")
        self.clock = clock
        self.budget_bytes = budget_bytes
        self.max_account_share = max_account_share
        self.index = PrefixIndex()
        self.store = store or MemoryStore()

    @property
    def share_bytes(self) -> int:
        """What one account may hold while another account holds entries."""
        return int(self.max_account_share * self.budget_bytes)

    def limit_bytes(self, account: AccountId) -> int:
        """What `account` may hold now: its share, or the whole budget while no other account holds entries."""
        return self.share_bytes if self.index.others_hold_blobs(account) else self.budget_bytes

    def plan(self, scope: CacheScope, rendered: RenderedPrompt, rules: CachingRules | None) -> CachePlan:
        if not any(b.checkpoint for b in rendered.boundaries):
            return CachePlan()
        if rules is None or not scope.caching_enabled:
            outcome = Outcome.NOT_ALLOWED if rules is None else Outcome.REGION_DISABLED
            return CachePlan(reports=disabled_reports(rendered.boundaries, outcome))
        now = self.clock.now_s()
        self._free(self.index.expire(now))
        seed = scope_seed(scope.account_id, scope.region, scope.model_id)
        keys = chain_keys(seed, rendered.tokens, [b.end_tokens for b in rendered.boundaries])
        decision = decide(rendered.boundaries, keys, rules, self.index, seed, now)
        return self._plan_from(decision, _Handle(seed, keys, decision, scope.region, scope.account_id), now)

    def match_tokens(self, scope: CacheScope, rendered: RenderedPrompt, rules: CachingRules | None) -> int:
        if rules is None or not scope.caching_enabled or not any(b.checkpoint for b in rendered.boundaries):
            return 0
        seed = scope_seed(scope.account_id, scope.region, scope.model_id)
        keys = chain_keys(seed, rendered.tokens, [b.end_tokens for b in rendered.boundaries])
        hit = longest_hit(rendered.boundaries, keys, rules, self.index, self.clock.now_s())
        return hit.num_tokens if hit else 0

    def _plan_from(self, decision: Decision, handle: _Handle, now: float) -> CachePlan:
        restore, restore_tokens = None, 0
        if decision.hit is not None:
            self.index.touch(decision.hit.key, now)
            self._touch_ancestors(handle, decision.hit.block_index, now)
            self.index.pin(decision.hit.key)
            restore, restore_tokens = self.store.get(decision.hit.blob_id), decision.hit.num_tokens
        capture = (decision.writes[-1].num_tokens,) if decision.writes else ()
        return CachePlan(
            restore=restore,
            restore_tokens=restore_tokens,
            capture_at=capture,
            read_tokens=decision.read_tokens,
            write_5m_tokens=decision.write_5m_tokens,
            write_1h_tokens=decision.write_1h_tokens,
            reports=decision.reports,
            handle=handle,
        )

    def _touch_ancestors(self, handle: _Handle, hit_block: int, now: float) -> None:
        """A hit refreshes every stored prefix of it too (our choice: they are read as part of it)."""
        for key in handle.keys[:hit_block]:
            if self.index.live(key, now) is not None:
                self.index.touch(key, now)

    def commit(self, plan: CachePlan, snapshots: tuple[Snapshot, ...]) -> None:
        handle = plan.handle
        if not isinstance(handle, _Handle) or not handle.decision.writes or not snapshots:
            return
        now = self.clock.now_s()
        snapshot = snapshots[-1]
        if not self._fits(snapshot, handle.account):
            return
        blob_id = self.index.new_blob(snapshot.num_tokens, snapshot.num_bytes, handle.account, handle.region)
        self.store.put(blob_id, snapshot)
        freed: list[BlobId] = []
        for write in handle.decision.writes:
            freed += self.index.insert(write.key, handle.scope, write.num_tokens, write.ttl, blob_id, now)
        freed += self._rehome_chain(handle, blob_id, snapshot.num_tokens, now)
        freed += self.index.trim_owner(handle.account, self.share_bytes)
        freed += self.index.evict_to(self.budget_bytes, self.share_bytes)
        self._free(freed)

    def _fits(self, snapshot: Snapshot, account: AccountId) -> bool:
        """Whether the snapshot may be stored at all; says why not, since the request was billed a write."""
        if snapshot.num_bytes > self.budget_bytes:
            log.warning(
                "snapshot of %d bytes exceeds the cache budget of %d bytes; not stored",
                snapshot.num_bytes,
                self.budget_bytes,
            )
            return False
        if snapshot.num_bytes > self.limit_bytes(account):
            log.warning(
                "snapshot of %d bytes exceeds account %s's share of the cache (%g of %d = %d bytes) while other "
                "accounts hold entries; not stored",
                snapshot.num_bytes,
                account,
                self.max_account_share,
                self.budget_bytes,
                self.share_bytes,
            )
            return False
        return True

    def _rehome_chain(self, handle: _Handle, blob_id: BlobId, num_tokens: int, now: float) -> list[BlobId]:
        """Older entries on this chain are prefixes of the new snapshot: point them into it, so the
        bytes of an older, shorter snapshot are freed instead of kept twice. Safe while another request
        restores from the old snapshot: its plan holds the Snapshot object itself."""
        freed: list[BlobId] = []
        for key in handle.keys:
            entry = self.index.live(key, now)
            if entry is not None and entry.num_tokens <= num_tokens:
                freed += self.index.rehome(key, blob_id)
        return freed

    def resize(self, budget_bytes: int) -> None:
        """Change the byte budget (and so every share); evicts at once if the live snapshots no longer fit.
        Accounts left over their smaller share are trimmed lazily, as after a second account appears."""
        self.budget_bytes = budget_bytes
        self._free(self.index.evict_to(budget_bytes, self.share_bytes))

    def release(self, plan: CachePlan) -> None:
        handle = plan.handle
        if isinstance(handle, _Handle) and handle.decision.hit is not None:
            self.index.unpin(handle.decision.hit.key)

    def stats(self) -> CacheStats:
        entries, sizes = self.index.totals_by_label()
        return CacheStats(
            entries_by_region=entries,
            bytes_by_region=sizes,
            num_entries=self.index.num_entries,
            num_snapshots=self.index.num_blobs,
            num_bytes=self.index.num_bytes,
            budget_bytes=self.budget_bytes,
            removals={reason.value: n for reason, n in self.index.stats.removals.items()},
            quota_evictions_by_account={owner: n for owner, n in self.index.stats.quota_removals_by_owner.items()},
        )

    def _free(self, blob_ids: list[BlobId]) -> None:
        for blob_id in blob_ids:
            self.store.delete(blob_id)
