"""The pure decision for one request (caching-semantics §6): which prefix to read, what to write,
the usage split, and why each checkpoint did what it did.

    effective = checkpoints with min_tokens <= T(k) (<= max_cache_tokens)   — a suffix of them
    A = the largest boundary with a live entry, searched in each effective checkpoint's window
        k, k-1, …, k-(lookback-1)
    C = the last effective checkpoint; every effective checkpoint after A is written
    read = T(A), write = T(C) - T(A), split at B = the last 1h checkpoint written:
        write_1h = T(B) - T(A), write_5m = T(C) - T(B)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cachepoint.cache.index import BlobId, Entry, RemovalReason
from cachepoint.cache.keys import BlockHash
from cachepoint.cache.plan import CheckpointReport, MissCause, Outcome
from cachepoint.models.spec import CachingRules
from cachepoint.prompt.checkpoints import effective_ttl
from cachepoint.prompt.render import Boundary
from cachepoint.types import Ttl


class EntryView(Protocol):
    """What the planner reads: the in-memory index, or a view that knows nothing (the directory is down)."""

    def live(self, key: BlockHash, now_s: float) -> Entry | None: ...

    def removal_reason(self, key: BlockHash) -> RemovalReason | None: ...

    def scope_has_entries(self, scope: BlockHash) -> bool: ...


@dataclass(frozen=True)
class Hit:
    key: BlockHash
    block_index: int
    num_tokens: int
    blob_id: BlobId


@dataclass(frozen=True)
class Write:
    key: BlockHash
    block_index: int
    num_tokens: int
    ttl: Ttl
    implicit: bool = False  # implicit caching's: captured, not billed


@dataclass(frozen=True)
class Decision:
    hit: Hit | None
    writes: tuple[Write, ...]
    write_5m_tokens: int
    write_1h_tokens: int
    reports: tuple[CheckpointReport, ...]

    @property
    def read_tokens(self) -> int:
        return self.hit.num_tokens if self.hit else 0


def decide(
    boundaries: Sequence[Boundary],
    keys: Sequence[BlockHash],
    rules: CachingRules,
    index: EntryView,
    scope: BlockHash,
    now_s: float,
) -> Decision:
    marked = [b for b in boundaries if b.checkpoint is not None]
    hit = longest_hit(boundaries, keys, rules, index, now_s)
    effective = [b for b in marked if _is_effective(b, rules)]
    floor = hit.block_index if hit else -1
    writes = tuple(_write(b, keys, rules) for b in effective if b.block_index > floor)
    billed = tuple(w for w in writes if not w.implicit)
    write_1h, write_5m = _split_by_ttl(hit.num_tokens if hit else 0, billed)
    reports = tuple(_report(b, rules, hit, keys, index, scope) for b in marked if _reported(b, rules))
    return Decision(hit, writes, write_5m, write_1h, reports)


def _reported(boundary: Boundary, rules: CachingRules) -> bool:
    """An implicit marker that could cache nothing (a short prompt) is not worth a report on every request."""
    return not boundary.checkpoint.implicit or _is_effective(boundary, rules)  # type: ignore[union-attr]


def _write(boundary: Boundary, keys: Sequence[BlockHash], rules: CachingRules) -> Write:
    checkpoint = boundary.checkpoint
    assert checkpoint is not None
    ttl = effective_ttl(checkpoint.ttl, rules)
    return Write(keys[boundary.block_index], boundary.block_index, boundary.end_tokens, ttl, checkpoint.implicit)


def longest_hit(
    boundaries: Sequence[Boundary], keys: Sequence[BlockHash], rules: CachingRules, index: EntryView, now_s: float
) -> Hit | None:
    """The live entry this request would read (A), searched in each effective checkpoint's window."""
    effective = [b for b in boundaries if b.checkpoint is not None and _is_effective(b, rules)]
    return _find_hit(effective, keys, rules, index, now_s)


def disabled_reports(boundaries: Sequence[Boundary], outcome: Outcome) -> tuple[CheckpointReport, ...]:
    return tuple(
        CheckpointReport(b.block_index, b.end_tokens, b.checkpoint.label, outcome)
        for b in boundaries
        if b.checkpoint is not None
    )


def _is_effective(boundary: Boundary, rules: CachingRules) -> bool:
    ceiling = rules.max_cache_tokens
    return boundary.end_tokens >= rules.min_tokens and (ceiling is None or boundary.end_tokens <= ceiling)


def _find_hit(
    effective: list[Boundary], keys: Sequence[BlockHash], rules: CachingRules, index: EntryView, now_s: float
) -> Hit | None:
    best: Hit | None = None
    lookback = rules.lookback_blocks
    for checkpoint in effective:
        wanted = effective_ttl(checkpoint.checkpoint.ttl, rules).seconds if rules.strict_ttl_reads else 0  # type: ignore[union-attr]
        for block in range(checkpoint.block_index, max(checkpoint.block_index - lookback, -1), -1):
            if best is not None and block <= best.block_index:
                break
            entry = index.live(keys[block], now_s)
            if entry is not None and entry.ttl.seconds >= wanted:
                best = Hit(entry.key, block, entry.num_tokens, entry.blob_id)
                break
    return best


def _split_by_ttl(read_tokens: int, writes: tuple[Write, ...]) -> tuple[int, int]:
    if not writes:
        return 0, 0
    last_1h = [w.num_tokens for w in writes if w.ttl is Ttl.ONE_HOUR]
    b = last_1h[-1] if last_1h else read_tokens
    return b - read_tokens, writes[-1].num_tokens - b


def _report(
    boundary: Boundary,
    rules: CachingRules,
    hit: Hit | None,
    keys: Sequence[BlockHash],
    index: EntryView,
    scope: BlockHash,
) -> CheckpointReport:
    ttl = boundary.checkpoint.label  # type: ignore[union-attr]

    def make(outcome: Outcome, cause: MissCause | None = None) -> CheckpointReport:
        return CheckpointReport(boundary.block_index, boundary.end_tokens, ttl, outcome, cause)

    if boundary.end_tokens < rules.min_tokens:
        return make(Outcome.BELOW_MINIMUM)
    if not _is_effective(boundary, rules):
        return make(Outcome.OVER_CEILING)
    if hit is not None and boundary.block_index <= hit.block_index:
        return make(Outcome.HIT)
    return make(Outcome.WRITTEN, _miss_cause(keys[boundary.block_index], index, scope))


_CAUSES = {
    RemovalReason.TTL: MissCause.EXPIRED,
    RemovalReason.CAPACITY: MissCause.EVICTED,
    RemovalReason.QUOTA: MissCause.EVICTED,
    RemovalReason.UNREADABLE: MissCause.SNAPSHOT_UNREADABLE,
    RemovalReason.TOKEN_MISMATCH: MissCause.TOKEN_MISMATCH,
    RemovalReason.REPLICA_LOST: MissCause.REPLICA_LOST,
    RemovalReason.DIRECTORY_DOWN: MissCause.DIRECTORY_DOWN,
}


def _miss_cause(key: BlockHash, index: EntryView, scope: BlockHash) -> MissCause:
    reason = index.removal_reason(key)
    if reason is not None:
        return _CAUSES[reason]
    return MissCause.PREFIX_CHANGED if index.scope_has_entries(scope) else MissCause.NEW
