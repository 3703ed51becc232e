"""PrefixCache: the real PromptCache, gluing keys, the pure index and planner, and the snapshot store.

Tiers (RAM over disk, `store.py`): the index's budget is what exists (the disk budget with the disk tier on);
RAM holds the hot subset. A hit only on disk is planned with `fetch_blob`; `fetch` (off the event loop) reads,
verifies and promotes it, unless recomputing is faster (`costs.py`: still a read, reported `recomputed`).
Every change to entries goes to the disk tier's manifest, so a restart (`recover`) finds the live entries.

Runs on one thread only, so it needs no lock: the event loop's (plan/commit/release are quick and never
wait on the engine), or, with a shared directory (`mirror.py`, whose calls are network round trips), the
cache's own thread (`blocking`). "now" is read once per operation from the injected clock.

Replicas: a snapshot held by another process (a `cachepoint node`) is a marker naming its holder; a hit on
it is restored only on that replica (`CacheScope.runs_on`); on any other (the load guard sent the call
there) it is recomputed, billed as the read Bedrock's Region cache would give, reported `recomputed`, and
captured there: the entry moves to the less loaded replica, which serves the next reads. Per-account shares of
the budget (`max_account_share`): the rules are in `index.py`; `commit` applies them.
"""

from __future__ import annotations

import logging
import time
from array import array
from collections.abc import Collection
from dataclasses import dataclass, replace

from cachepoint.cache.costs import RestoreCosts
from cachepoint.cache.directory import BlobRef
from cachepoint.cache.disk import DiskTier, EntryRecord, Recovery, SnapshotRecord
from cachepoint.cache.index import BlobId, Entry, PrefixIndex, RemovalReason
from cachepoint.cache.keys import BlockHash, scope_seed
from cachepoint.cache.plan import (
    CachePlan,
    CacheScope,
    CacheStats,
    LiveEntry,
    Match,
    MissCause,
    Outcome,
    SnapshotUnavailable,
    Tier,
)
from cachepoint.cache.mirror import DirectoryMirror, Locations
from cachepoint.cache.planner import Decision, EntryView, Hit, decide, disabled_reports, longest_hit
from cachepoint.cache.recovery import rebuild
from cachepoint.cache.salts import SaltMemory, salted_keys
from cachepoint.cache.snapfile import Unreadable
from cachepoint.cache.stats import cache_stats, live_entries, prefix_of, reuse_gaps
from cachepoint.cache.store import TieredStore
from cachepoint.clock import Clock
from cachepoint.engine.protocol import Prefilled, Snapshot
from cachepoint.models.spec import CachingRules
from cachepoint.prompt.render import RenderedPrompt
from cachepoint.types import AccountId

log = logging.getLogger(__name__)

_REASONS = {
    MissCause.SNAPSHOT_UNREADABLE: RemovalReason.UNREADABLE,
    MissCause.TOKEN_MISMATCH: RemovalReason.TOKEN_MISMATCH,
    MissCause.REPLICA_LOST: RemovalReason.REPLICA_LOST,
}


@dataclass(frozen=True)
class _Handle:
    scope: BlockHash
    keys: tuple[BlockHash, ...]
    decision: Decision
    region: str
    account: AccountId
    fingerprint: str
    tokens: tuple[int, ...]
    model: str = ""
    moves: bool = False  # the hit is held by another replica: this one recomputes it and keeps a copy


class PrefixCache:
    def __init__(
        self,
        clock: Clock,
        budget_bytes: int,
        store: TieredStore | None = None,
        max_account_share: float = 0.5,
        mirror: DirectoryMirror | None = None,
    ) -> None:
        if not 0.0 < max_account_share <= 1.0:
            raise ValueError(f"max_account_share must be in (0, 1], not {max_account_share}")
        self.clock = clock
        self.budget_bytes = budget_bytes
        self.max_account_share = max_account_share
        self.index = PrefixIndex()
        self.store = store if store is not None else TieredStore(budget_bytes)
        self.disk: DiskTier | None = self.store.disk
        self.costs = RestoreCosts()
        self.recovery: Recovery | None = None
        self.mirror = mirror
        self.locations = mirror.locations if mirror is not None else Locations()
        self.salts = SaltMemory()

    @property
    def blocking(self) -> bool:
        """Whether calls wait on the network (a shared directory): run them off the event loop, on one thread."""
        return self.mirror is not None

    @property
    def share_bytes(self) -> int:
        """What one account may hold while another account holds entries."""
        return int(self.max_account_share * self.budget_bytes)

    def limit_bytes(self, account: AccountId) -> int:
        """What `account` may hold now: its share, or the whole budget while no other account holds entries."""
        return self.share_bytes if self.index.others_hold_blobs(account) else self.budget_bytes

    # -- planning -----------------------------------------------------------------------------------
    def plan(self, scope: CacheScope, rendered: RenderedPrompt, rules: CachingRules | None) -> CachePlan:
        if not any(b.checkpoint for b in rendered.boundaries):
            return CachePlan()
        if rules is None or not scope.caching_enabled:
            outcome = Outcome.NOT_ALLOWED if rules is None else Outcome.REGION_DISABLED
            return CachePlan(reports=disabled_reports(rendered.boundaries, outcome))
        now = self.clock.now_s()
        self._free(self.index.expire(now))
        self._drop_lost()
        seed = scope_seed(scope.account_id, scope.region, scope.model_id, scope.fingerprint)
        keys, anchor, first = salted_keys(seed, rendered)
        view = self._pull(seed, keys, now)
        while True:  # each pass drops one unusable snapshot, so this ends
            decision = decide(rendered.boundaries, keys, rules, view, seed, now)
            tier = self._tier(decision.hit, rendered.tokens, scope)
            if tier is not None:
                break
        if anchor is not None and first is not None:
            decision = self.salts.explain(anchor, rendered.message_salt, decision, first)
        hit = decision.hit  # a recomputed hit whose bytes are in RAM is held by another replica: it moves
        moves = tier is Tier.RECOMPUTED and hit is not None and self.store.get(hit.blob_id) is not None
        handle = _Handle(seed, keys, decision, scope.region, scope.account_id, scope.fingerprint, rendered.tokens,
                         scope.model_id, moves)  # fmt: skip
        plan = self._plan_from(decision, handle, now, tier)
        self._journal_removals()
        return plan

    def _tier(self, hit: Hit | None, tokens: tuple[int, ...], scope: CacheScope) -> Tier | None:
        """Where the hit's bytes come from; None after dropping a snapshot that cannot serve it."""
        if hit is None:
            return Tier.RAM
        held = self.store.get(hit.blob_id)
        if held is not None:
            if held.snapshot.holder != scope.runs_on:
                return Tier.RECOMPUTED  # another replica holds the bytes
            if held.snapshot.holder or _same_tokens(held.tokens, tokens, hit.num_tokens):
                return Tier.RAM  # a holder elsewhere compares the tokens itself before restoring
            self._remove_blob(hit.blob_id, RemovalReason.TOKEN_MISMATCH)
            return None
        if not self.store.on_disk(hit.blob_id):  # lost its bytes (a skipped disk write) before this hit
            self._remove_blob(hit.blob_id, RemovalReason.UNREADABLE)
            return None
        blob = self.index.blob(hit.blob_id)
        pays = not scope.runs_on and self.costs.disk_pays(scope.fingerprint, blob.num_bytes, hit.num_tokens)
        return Tier.DISK if pays else Tier.RECOMPUTED

    def match(self, scope: CacheScope, rendered: RenderedPrompt, rules: CachingRules | None) -> Match:
        """Query only (routing asks it per Region): what the request would read here now, and who holds it."""
        if rules is None or not scope.caching_enabled or not any(b.checkpoint for b in rendered.boundaries):
            return Match()
        now = self.clock.now_s()
        seed = scope_seed(scope.account_id, scope.region, scope.model_id, scope.fingerprint)
        keys = salted_keys(seed, rendered)[0]
        hit = longest_hit(rendered.boundaries, keys, rules, self._pull(seed, keys, now), now)
        if hit is None:
            return Match()
        held = self.store.get(hit.blob_id)
        self._journal_removals()
        return Match(hit.num_tokens, held.snapshot.holder if held is not None else "")

    def _pull(self, seed: BlockHash, keys: tuple[BlockHash, ...], now: float) -> EntryView:
        """The planner's view: the local index, first brought in step with the shared directory if any."""
        if self.mirror is None:
            return self.index
        view, freed = self.mirror.view(self.index, self.store, seed, keys, now)
        self._free(freed)
        return view

    def _plan_from(self, decision: Decision, handle: _Handle, now: float, tier: Tier) -> CachePlan:
        restore, restore_tokens, fetch = None, 0, None
        reports = decision.reports
        reuse = tuple(reuse_gaps(decision, handle.keys, self.index, now))
        if decision.hit is not None:
            self.index.count_hit(decision.hit.key)
            self.index.touch(decision.hit.key, now)
            self._touch_ancestors(handle, decision.hit.block_index, now)
            self.index.pin(decision.hit.key)
            held = self.store.get(decision.hit.blob_id) if tier is Tier.RAM else None
            restore = held.snapshot if held is not None else None
            restore_tokens = decision.hit.num_tokens if tier is not Tier.RECOMPUTED else 0
            fetch = decision.hit.blob_id if tier is Tier.DISK else None
            reports = tuple(replace(r, tier=tier) if r.outcome is Outcome.HIT else r for r in reports)
        capture = (decision.writes[-1].num_tokens,) if decision.writes else ()
        if not capture and handle.moves and decision.hit is not None:
            capture = (decision.hit.num_tokens,)  # the entry moves to the replica that recomputed it (commit)
        return CachePlan(
            restore=restore,
            restore_tokens=restore_tokens,
            capture_at=capture,
            read_tokens=decision.read_tokens,
            write_5m_tokens=decision.write_5m_tokens,
            write_1h_tokens=decision.write_1h_tokens,
            reports=reports,
            handle=handle,
            fetch_blob=fetch,
            prefix=prefix_of(decision),
            reuse=reuse,
        )

    def _touch_ancestors(self, handle: _Handle, hit_block: int, now: float) -> None:
        """A hit refreshes every stored prefix of it too (our choice: they are read as part of it)."""
        touched = [handle.keys[hit_block]] if handle.decision.hit else []
        for key in handle.keys[:hit_block]:
            if self.index.live(key, now) is not None:
                self.index.touch(key, now)
                touched.append(key)
        deadlines = [(key, entry.expires_at_s) for key in touched if (entry := self.index.entry(key))]
        if self.disk is not None:
            self.disk.touch(deadlines)
        if self.mirror is not None and deadlines:
            self.mirror.refresh(deadlines, now)

    # -- the disk tier's part -----------------------------------------------------------------------
    def fetch(self, plan: CachePlan) -> CachePlan:
        """Blocking (off the event loop; touches no index state): read the hit's snapshot, check its tokens."""
        handle = plan.handle
        if plan.fetch_blob is None or not isinstance(handle, _Handle):
            return plan
        started = time.perf_counter()
        try:
            held = self.store.load(BlobId(plan.fetch_blob))
        except Unreadable as error:
            raise SnapshotUnavailable(MissCause.SNAPSHOT_UNREADABLE, str(error)) from None
        self.costs.disk_read.observe(held.snapshot.num_bytes, time.perf_counter() - started)
        if not _same_tokens(held.tokens, handle.tokens, plan.restore_tokens):
            raise SnapshotUnavailable(MissCause.TOKEN_MISMATCH, f"snapshot {plan.fetch_blob} holds other tokens")
        return replace(plan, restore=held.snapshot, fetch_blob=None)

    def discard(self, plan: CachePlan, error: SnapshotUnavailable) -> None:
        """The hit's snapshot could not serve it (unreadable on disk, or its replica lost it): drop its
        entries, so planning again misses with the cause."""
        log.warning("prompt cache: %s; the request is planned again", error)
        handle = plan.handle
        hit = handle.decision.hit if isinstance(handle, _Handle) else None
        blob = BlobId(plan.fetch_blob) if plan.fetch_blob is not None else hit.blob_id if hit else None
        if blob is not None and self.index.has_blob(blob):
            self._remove_blob(blob, _REASONS.get(error.cause, RemovalReason.UNREADABLE))
            self._journal_removals()

    def drop_holder(self, holder: str) -> None:
        """A replica died: every entry whose bytes it held goes (`replica-lost`), here and in the directory."""
        for blob in self.locations.held_by(holder):
            if self.index.has_blob(blob):
                self._remove_blob(blob, RemovalReason.REPLICA_LOST)
        self._journal_removals()
        if self.mirror is not None:
            self.mirror.drop_holder(holder)

    def recover(self, fingerprints: Collection[str]) -> Recovery | None:
        """Rebuild the index from the disk tier's manifest, then start its writer. Before serving."""
        if self.disk is None:
            return None
        found = self.disk.recover(self.clock.now_s(), fingerprints)
        rebuild(self.index, self.store, found)
        self.recovery = found
        self.disk.start()
        self._free(self.index.evict_to(self.budget_bytes, self.share_bytes))  # the budget may have shrunk
        self._journal_removals()
        return found

    # -- after prefill ------------------------------------------------------------------------------
    def commit(self, plan: CachePlan, prefilled: Prefilled) -> None:
        handle = plan.handle
        if not isinstance(handle, _Handle):
            return
        self._learn(handle.fingerprint, plan, prefilled)
        snapshots = prefilled.snapshots
        if not snapshots or not (handle.decision.writes or handle.moves):
            return
        now = self.clock.now_s()
        snapshot = snapshots[-1]
        if not self._fits(snapshot, handle.account):
            return
        blob_id = self.index.new_blob(snapshot.num_tokens, snapshot.num_bytes, handle.account, handle.region,
                                      handle.model)  # fmt: skip
        record = SnapshotRecord(blob_id, snapshot.num_tokens, snapshot.num_bytes, snapshot.nominal_bytes is not None,
                                handle.fingerprint, handle.account, handle.region)  # fmt: skip
        if snapshot.holder:
            self.locations.register(blob_id, BlobRef(snapshot.holder, snapshot.ref))
        tokens = array("i", handle.tokens[: snapshot.num_tokens])
        self.store.put(record, snapshot, tokens, persist=not snapshot.holder)
        freed: list[BlobId] = []
        changed = [w.key for w in handle.decision.writes]
        for write in handle.decision.writes:
            freed += self.index.insert(write.key, handle.scope, write.num_tokens, write.ttl, blob_id, now)
        rehomed, moved = self._rehome_chain(handle, blob_id, snapshot.num_tokens, now)
        freed += rehomed
        self._journal_entries(changed + moved)  # before the freed snapshots' rows go
        if self.mirror is not None:
            self.mirror.publish(self.index, changed + moved, now)
        freed += self.index.trim_owner(handle.account, self.share_bytes)
        freed += self.index.evict_to(self.budget_bytes, self.share_bytes)
        self._journal_removals()
        self._free(freed)

    def _learn(self, engine: str, plan: CachePlan, prefilled: Prefilled) -> None:
        """What recomputing and importing cost on this engine, from the prefill just done."""
        compute_s = prefilled.prefill_s - prefilled.restore_s - prefilled.snapshot_s
        self.costs.observe_prefill(engine, prefilled.num_evaluated_tokens, compute_s)
        if plan.restore is not None and plan.restore.nominal_bytes is None:
            self.costs.observe_import(engine, plan.restore.num_bytes, prefilled.restore_s)

    def _fits(self, snapshot: Snapshot, account: AccountId) -> bool:
        """Whether the snapshot may be stored at all; says why not, since the request was billed a write."""
        size, budget, share = snapshot.num_bytes, self.budget_bytes, self.share_bytes
        if size > budget:
            log.warning("snapshot of %d bytes exceeds the cache budget of %d bytes; not stored", size, budget)
        elif size > self.limit_bytes(account):
            log.warning("snapshot of %d bytes exceeds account %s's share of the cache (%g of %d = %d bytes) while "
                        "other accounts hold entries; not stored", size, account, self.max_account_share, budget, share)
        return size <= self.limit_bytes(account)

    def _rehome_chain(
        self, handle: _Handle, blob_id: BlobId, num_tokens: int, now: float
    ) -> tuple[list[BlobId], list[BlockHash]]:
        """Older entries on this chain are prefixes of the new snapshot: point them into it, so the
        bytes of an older, shorter snapshot are freed instead of kept twice. Safe while another request
        restores from the old snapshot: its plan holds the Snapshot object itself."""
        freed: list[BlobId] = []
        moved: list[BlockHash] = []
        for key in handle.keys:
            entry = self.index.live(key, now)
            if entry is not None and entry.num_tokens <= num_tokens and entry.blob_id != blob_id:
                freed += self.index.rehome(key, blob_id)
                moved.append(key)
        return freed, moved

    def resize(self, budget_bytes: int) -> None:
        """A new budget (and shares): evicts at once if the live snapshots no longer fit; accounts left over their
        smaller share are trimmed lazily, as after a second account appears."""
        self.budget_bytes = budget_bytes
        self._free(self.index.evict_to(budget_bytes, self.share_bytes))
        self._journal_removals()

    def close(self) -> None:
        """Let the disk tier finish what is queued (shutdown)."""
        if self.disk is not None:
            self.disk.close()

    def release(self, plan: CachePlan) -> None:
        handle = plan.handle
        if isinstance(handle, _Handle) and handle.decision.hit is not None:
            self.index.unpin(handle.decision.hit.key)

    def stats(self) -> CacheStats:
        return cache_stats(self.index, self.store, self.budget_bytes)

    def entries(self, limit: int) -> list[LiveEntry]:
        return live_entries(self.index, self.store, self.clock.now_s(), limit)

    def _remove_blob(self, blob_id: BlobId, reason: RemovalReason) -> None:
        self._free(self.index.remove_blob(blob_id, reason))

    def _drop_lost(self) -> None:
        for blob_id in self.store.take_lost():
            if self.index.has_blob(blob_id):
                self._remove_blob(blob_id, RemovalReason.CAPACITY)

    def _journal_entries(self, keys: list[BlockHash]) -> None:
        if self.disk is None:
            return
        entries = [e for key in dict.fromkeys(keys) if (e := self.index.entry(key)) is not None]
        self.disk.upsert([_record(e) for e in entries])

    def _journal_removals(self) -> None:
        removed = self.index.drain_removed()
        if self.disk is not None and removed:
            self.disk.remove([key for key, _ in removed])
        if self.mirror is not None and removed:
            self.mirror.removed(self.index, removed)
        self.locations.settle()

    def _free(self, blob_ids: list[BlobId]) -> None:
        for blob_id in blob_ids:
            self.store.delete(blob_id)
        self.locations.freed(blob_ids)


def _record(entry: Entry) -> EntryRecord:
    return EntryRecord(entry.key, entry.scope, entry.blob_id, entry.num_tokens, entry.ttl, entry.expires_at_s)


def _same_tokens(stored: array[int], tokens: tuple[int, ...], num_tokens: int) -> bool:
    """The prefix a restore would serve, compared token by token (an equal key is not proof enough)."""
    return len(stored) >= num_tokens and stored[:num_tokens] == array("i", tokens[:num_tokens])
