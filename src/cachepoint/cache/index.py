"""The pure prefix index: entries (one per written checkpoint prefix) pointing into refcounted blobs.

A blob is one KV snapshot, taken at the last checkpoint a request wrote; every entry of that write
(and every older entry of the same chain, re-homed onto it) points into it, because a longer
snapshot serves any shorter prefix of itself. So nested checkpoints never store tokens twice.

Three removal axes:
- TTL: `expires_at_s = last use + ttl`, refreshed by `touch`; `expire(now)` drops what is due.
- quota: every blob has one owner (an account; all entries in a blob share it, since keys are seeded by the
  account). `trim_owner(owner, share)` drops the owner's own least-recently-used unpinned entries until it
  holds at most `share` bytes. A share binds only while another owner holds blobs (see `over_share`).
- capacity: `evict_to(budget, share)` drops least-recently-used unpinned entries until the live blobs fit,
  taking them first from owners over their share (reason quota), only then from anyone (reason capacity).
- bytes: `remove_blob(blob_id, reason)` drops every entry of a blob whose bytes turned out unreadable,
  or did not match the request's tokens.
Removing an entry frees its blob when no entry points into it any more; mutating calls return the
freed blob IDs so the owner can drop their bytes, and `drain_removed()` hands out the removed keys (a
journal persists them). `restore_blob`/`restore_entry`/`remember` rebuild an index after a restart.
No I/O, no clock: `now` is always an argument.

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

import heapq
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NewType

from cachepoint.cache.keys import BlockHash
from cachepoint.types import AccountId, Ttl

BlobId = NewType("BlobId", int)
MAX_TOMBSTONES = 10_000


class RemovalReason(StrEnum):
    TTL = "ttl"
    CAPACITY = "capacity"
    QUOTA = "quota"  # the owner held more than its share of the budget
    UNREADABLE = "unreadable"  # the snapshot's bytes were missing, truncated or failed their checksum
    TOKEN_MISMATCH = "token-mismatch"  # the stored tokens differ from the request's under an equal key
    REPLICA_LOST = "replica-lost"  # the replica holding the bytes died or no longer has them
    DIRECTORY_DOWN = "directory-down"  # not a removal: the shared directory could not be asked


@dataclass
class Entry:
    key: BlockHash
    scope: BlockHash
    num_tokens: int
    ttl: Ttl
    expires_at_s: float
    blob_id: BlobId
    owner: AccountId
    label: str = ""  # the Region, for per-Region figures
    model: str = ""
    hits: int = 0

    @property
    def last_used_s(self) -> float:
        return self.expires_at_s - self.ttl.seconds


@dataclass
class Blob:
    blob_id: BlobId
    num_tokens: int
    num_bytes: int
    owner: AccountId
    refs: int = 0
    label: str = ""
    model: str = ""


@dataclass
class OwnerTotals:
    num_blobs: int = 0
    num_bytes: int = 0


@dataclass
class IndexStats:
    removals: Counter[RemovalReason] = field(default_factory=Counter)
    quota_removals_by_owner: Counter[AccountId] = field(default_factory=Counter)  # keyed by the owner over quota


class PrefixIndex:
    def __init__(self) -> None:
        self._entries: dict[BlockHash, Entry] = {}
        self._lru: OrderedDict[BlockHash, None] = OrderedDict()  # least recently used first
        self._deadlines: list[tuple[float, BlockHash]] = []  # heap; stale items skipped lazily
        self._blobs: dict[BlobId, Blob] = {}
        self._scopes: dict[BlockHash, set[BlockHash]] = {}
        # why an entry went, and when it was last used (the idle gap of a later miss on it)
        self._tombstones: OrderedDict[BlockHash, tuple[RemovalReason, float | None]] = OrderedDict()
        # Pins count per key, not per Entry: a request in flight may see its entry replaced (the same prefix
        # written again by a concurrent request) or expire and be written again; its unpin then releases
        # whichever entry holds the key, which stays protected from capacity until then, as the old one was.
        self._pins: Counter[BlockHash] = Counter()
        self._owners: dict[AccountId, OwnerTotals] = {}  # only owners holding at least one blob
        self._next_blob_id = 1
        self._removed: list[tuple[BlockHash, BlobId]] = []
        self.num_bytes = 0
        self.stats = IndexStats()

    # -- queries (no side effects) -------------------------------------------------------------
    def live(self, key: BlockHash, now_s: float) -> Entry | None:
        entry = self._entries.get(key)
        return entry if entry is not None and now_s < entry.expires_at_s else None

    def removal_reason(self, key: BlockHash) -> RemovalReason | None:
        found = self._tombstones.get(key)
        return found[0] if found else None

    def last_used_before_removal(self, key: BlockHash) -> float | None:
        found = self._tombstones.get(key)
        return found[1] if found else None

    def scope_has_entries(self, scope: BlockHash) -> bool:
        return bool(self._scopes.get(scope))

    def num_pins(self, key: BlockHash) -> int:
        return self._pins[key]

    def blob(self, blob_id: BlobId) -> Blob:
        return self._blobs[blob_id]

    def has_blob(self, blob_id: BlobId) -> bool:
        return blob_id in self._blobs

    def entry(self, key: BlockHash) -> Entry | None:
        return self._entries.get(key)

    def entries(self) -> list[Entry]:
        """Every entry, least recently used first; O(size)."""
        return [self._entries[key] for key in self._lru]

    @property
    def num_entries(self) -> int:
        return len(self._entries)

    @property
    def num_blobs(self) -> int:
        return len(self._blobs)

    def lru_keys(self) -> list[BlockHash]:
        return list(self._lru)

    def owner_bytes(self, owner: AccountId) -> int:
        totals = self._owners.get(owner)
        return totals.num_bytes if totals is not None else 0

    def bytes_by_owner(self) -> dict[AccountId, int]:
        return {owner: totals.num_bytes for owner, totals in self._owners.items()}

    def others_hold_blobs(self, owner: AccountId) -> bool:
        return len(self._owners) > (1 if owner in self._owners else 0)

    def over_share(self, owner: AccountId, share_bytes: int) -> bool:
        """Whether `owner` holds more than `share_bytes` while another owner holds blobs. A lone owner is
        never over its share: shares protect owners from each other, and with nobody to protect, a cap
        would only leave the budget idle."""
        return self.owner_bytes(owner) > share_bytes and self.others_hold_blobs(owner)

    def entries_of(self, owner: AccountId) -> list[Entry]:
        """`owner`'s entries, least recently used first; O(size)."""
        return [self._entries[key] for key in self._lru if self._entries[key].owner == owner]

    def totals_by_label(self) -> tuple[dict[str, int], dict[str, int]]:
        """(entries, bytes) per label; O(size), for scrapes and stats pages."""
        entries: Counter[str] = Counter(e.label for e in self._entries.values())
        sizes: Counter[str] = Counter()
        for blob in self._blobs.values():
            sizes[blob.label] += blob.num_bytes
        return dict(entries), dict(sizes)

    # -- mutations ------------------------------------------------------------------------------
    def new_blob(
        self, num_tokens: int, num_bytes: int, owner: AccountId, label: str = "", model: str = ""
    ) -> BlobId:
        blob_id = BlobId(self._next_blob_id)
        self._next_blob_id += 1
        self._blobs[blob_id] = Blob(blob_id, num_tokens, num_bytes, owner, label=label, model=model)
        self.num_bytes += num_bytes
        totals = self._owners.setdefault(owner, OwnerTotals())
        totals.num_blobs += 1
        totals.num_bytes += num_bytes
        return blob_id

    def insert(
        self, key: BlockHash, scope: BlockHash, num_tokens: int, ttl: Ttl, blob_id: BlobId, now_s: float
    ) -> list[BlobId]:
        """Create (or replace) the entry for `key`, owned by its blob's owner; returns blobs freed by the
        replacement."""
        blob = self._blobs[blob_id]
        assert num_tokens <= blob.num_tokens, "an entry must lie within its blob"
        blob.refs += 1  # before dropping a replaced entry, which may share this blob
        freed = self._drop(key) if key in self._entries else []
        expires_at_s = now_s + ttl.seconds
        entry = Entry(key, scope, num_tokens, ttl, expires_at_s, blob_id, blob.owner, blob.label, blob.model)
        self._entries[key] = entry
        self._lru[key] = None
        self._scopes.setdefault(scope, set()).add(key)
        self._tombstones.pop(key, None)
        heapq.heappush(self._deadlines, (entry.expires_at_s, key))
        return freed

    def rehome(self, key: BlockHash, blob_id: BlobId) -> list[BlobId]:
        """Point an existing entry into a newer blob that also holds its prefix; frees the old one if unused."""
        entry = self._entries[key]
        if entry.blob_id == blob_id:
            return []
        assert entry.num_tokens <= self._blobs[blob_id].num_tokens
        assert entry.owner == self._blobs[blob_id].owner, "an entry moves only into its own owner's blob"
        old = entry.blob_id
        entry.blob_id = blob_id
        self._blobs[blob_id].refs += 1
        return self._release_blob(old)

    def count_hit(self, key: BlockHash) -> None:
        self._entries[key].hits += 1

    def touch(self, key: BlockHash, now_s: float) -> None:
        """A hit: the TTL restarts from now (free refresh) and the entry becomes most recently used."""
        entry = self._entries[key]
        entry.expires_at_s = now_s + entry.ttl.seconds
        self._lru.move_to_end(key)
        heapq.heappush(self._deadlines, (entry.expires_at_s, key))

    def pin(self, key: BlockHash) -> None:
        assert key in self._entries, "pin of a missing entry"
        self._pins[key] += 1

    def unpin(self, key: BlockHash) -> None:
        # The entry may have expired while in use (pins protect from capacity only), or been replaced.
        assert self._pins[key] > 0, "unpin without pin"
        self._pins[key] -= 1
        if not self._pins[key]:
            del self._pins[key]

    def expire(self, now_s: float) -> list[BlobId]:
        freed: list[BlobId] = []
        while self._deadlines and self._deadlines[0][0] <= now_s:
            deadline, key = heapq.heappop(self._deadlines)
            entry = self._entries.get(key)
            if entry is not None and entry.expires_at_s == deadline:
                freed += self._remove(key, RemovalReason.TTL)
        return freed

    def trim_owner(self, owner: AccountId, share_bytes: int) -> list[BlobId]:
        """Drop `owner`'s least-recently-used unpinned entries until it is within its share."""
        return self._evict_lru(
            lambda: not self.over_share(owner, share_bytes), lambda e: e.owner == owner, RemovalReason.QUOTA
        )

    def evict_to(self, budget_bytes: int, share_bytes: int | None = None) -> list[BlobId]:
        """Drop least-recently-used unpinned entries until the live blobs fit the budget. With a share,
        owners over it go first (LRU among them), so an owner within its share never makes room while
        another one holds unpinned entries over its share."""
        freed: list[BlobId] = []
        if share_bytes is not None:
            freed += self._evict_lru(
                lambda: self.num_bytes <= budget_bytes,
                lambda e: self.over_share(e.owner, share_bytes),
                RemovalReason.QUOTA,
            )
        return freed + self._evict_lru(lambda: self.num_bytes <= budget_bytes, lambda e: True, RemovalReason.CAPACITY)

    def drop_blob_if_unused(self, blob_id: BlobId) -> list[BlobId]:
        return self._release_blob(blob_id, decrement=False)

    def remove_blob(self, blob_id: BlobId, reason: RemovalReason) -> list[BlobId]:
        """Drop every entry pointing into `blob_id` (pinned or not: its bytes are gone)."""
        keys = [key for key, entry in self._entries.items() if entry.blob_id == blob_id]
        freed: list[BlobId] = []
        for key in keys:
            freed += self._remove(key, reason)
        return freed

    def remove_entry(self, key: BlockHash, reason: RemovalReason) -> list[BlobId]:
        """Drop one entry, pinned or not (it went elsewhere: the shared directory no longer has it)."""
        return self._remove(key, reason) if key in self._entries else []

    def drain_removed(self) -> list[tuple[BlockHash, BlobId]]:
        """(key, blob) of entries removed (for any reason, replacements excepted) since the last call."""
        removed, self._removed = self._removed, []
        return removed

    # -- rebuilding after a restart -------------------------------------------------------------
    def restore_blob(self, blob_id: BlobId, num_tokens: int, num_bytes: int, owner: AccountId, label: str) -> None:
        assert blob_id not in self._blobs, "a blob restored twice"
        self._blobs[blob_id] = Blob(blob_id, num_tokens, num_bytes, owner, label=label)
        self._next_blob_id = max(self._next_blob_id, blob_id + 1)
        self.num_bytes += num_bytes
        totals = self._owners.setdefault(owner, OwnerTotals())
        totals.num_blobs += 1
        totals.num_bytes += num_bytes

    def restore_entry(
        self, key: BlockHash, scope: BlockHash, num_tokens: int, ttl: Ttl, blob_id: BlobId, expires_at_s: float
    ) -> None:
        """An entry as it was, deadline included (least recently used first, as `entries()` lists them)."""
        self.insert(key, scope, num_tokens, ttl, blob_id, expires_at_s - ttl.seconds)

    def remember(self, key: BlockHash, reason: RemovalReason) -> None:
        """A removal that happened elsewhere (while the server was down): later misses on `key` say why."""
        self.stats.removals[reason] += 1
        self._tombstone(key, reason)

    # -- internals ------------------------------------------------------------------------------
    def _evict_lru(
        self, done: Callable[[], bool], eligible: Callable[[Entry], bool], reason: RemovalReason
    ) -> list[BlobId]:
        """Remove eligible unpinned entries, least recently used first, until `done()`. Both are asked
        afresh per entry because each removal changes the totals they look at."""
        freed: list[BlobId] = []
        if done():
            return freed  # the common case: skip copying the LRU order
        for key in list(self._lru):
            entry = self._entries[key]
            if not self._pins[key] and eligible(entry):
                freed += self._remove(key, reason)
                if done():
                    break
        return freed

    def _remove(self, key: BlockHash, reason: RemovalReason) -> list[BlobId]:
        self.stats.removals[reason] += 1
        if reason is RemovalReason.QUOTA:
            self.stats.quota_removals_by_owner[self._entries[key].owner] += 1
        self._tombstone(key, reason, self._entries[key].last_used_s)
        self._removed.append((key, self._entries[key].blob_id))
        return self._drop(key)

    def _tombstone(self, key: BlockHash, reason: RemovalReason, last_used_s: float | None = None) -> None:
        self._tombstones[key] = (reason, last_used_s)
        if len(self._tombstones) > MAX_TOMBSTONES:
            self._tombstones.popitem(last=False)

    def _drop(self, key: BlockHash) -> list[BlobId]:
        entry = self._entries.pop(key)
        del self._lru[key]
        scope_keys = self._scopes[entry.scope]
        scope_keys.discard(key)
        if not scope_keys:
            del self._scopes[entry.scope]
        return self._release_blob(entry.blob_id)

    def _release_blob(self, blob_id: BlobId, *, decrement: bool = True) -> list[BlobId]:
        blob = self._blobs[blob_id]
        blob.refs -= 1 if decrement else 0
        if blob.refs > 0:
            return []
        del self._blobs[blob_id]
        self.num_bytes -= blob.num_bytes
        totals = self._owners[blob.owner]
        totals.num_blobs -= 1
        totals.num_bytes -= blob.num_bytes
        if totals.num_blobs == 0:
            del self._owners[blob.owner]
        return [blob_id]

    def check_integrity(self) -> None:
        """Cheap invariants; tests call it after every operation."""
        refs = Counter(e.blob_id for e in self._entries.values())
        assert set(self._lru) == set(self._entries), "LRU and entries disagree"
        assert refs == Counter({b: blob.refs for b, blob in self._blobs.items()}), "blob ref counts are wrong"
        assert self.num_bytes == sum(b.num_bytes for b in self._blobs.values()), "byte total drifted"
        owners: dict[AccountId, OwnerTotals] = {}
        for blob in self._blobs.values():
            totals = owners.setdefault(blob.owner, OwnerTotals())
            totals.num_blobs += 1
            totals.num_bytes += blob.num_bytes
        assert owners == self._owners, "per-owner totals drifted"
        assert all(e.owner == self._blobs[e.blob_id].owner for e in self._entries.values()), "entry in a foreign blob"
        assert all(e.num_tokens <= self._blobs[e.blob_id].num_tokens for e in self._entries.values())
        assert all(n > 0 for n in self._pins.values()), "a pin count is not positive"
        assert {k for keys in self._scopes.values() for k in keys} == set(self._entries), "scope sets drifted"
        live_deadlines = {(e.expires_at_s, k) for k, e in self._entries.items()}
        assert live_deadlines <= set(self._deadlines), "an entry has no deadline record"
