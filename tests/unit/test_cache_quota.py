"""Per-account shares of the cache budget: exact states with a fake clock, then a property over random
interleavings of plan/commit/release by three accounts."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cachepoint.cache.index import RemovalReason
from cachepoint.cache.keys import BlockHash, chain_keys, scope_seed
from cachepoint.cache.manager import PrefixCache
from cachepoint.cache.plan import CachePlan, MissCause
from cachepoint.clock import FakeClock
from cachepoint.engine.fake import encode_snapshot
from cachepoint.engine.protocol import Prefilled
from cachepoint.models.catalog import Catalog
from cachepoint.prompt.render import Boundary, RenderedPrompt
from cachepoint.types import AccountId, Checkpoint, Section, Ttl
from tests.cachekit import run, scope

SONNET_45 = Catalog.packaged().get("anthropic.claude-sonnet-4-5-20250929-v1:0")
assert SONNET_45 is not None and SONNET_45.caching is not None
RULES = SONNET_45.caching  # min 1024 tokens
A, B, C = AccountId("111111111111"), AccountId("222222222222"), AccountId("333333333333")
DOC = 1250  # tokens; the fake engine stores 4 bytes a token, so one document is a 5,000-byte snapshot
BIG = 6_000  # tokens: 24,000 bytes, within the budget but over a 20,000-byte share
BUDGET = 40_000  # eight documents; the default share of 0.5 is four


def chain(docs: Sequence[int], size: int = DOC) -> RenderedPrompt:
    """Blocks of `size` tokens, block n all token n+3 (distinct for distinct n), a checkpoint on each."""
    tokens: list[int] = []
    boundaries = []
    for index, n in enumerate(docs):
        tokens += [n + 3] * size
        checkpoint = Checkpoint(Ttl.FIVE_MINUTES, f"messages.0.content.{index}")
        boundaries.append(Boundary(index, len(tokens), Section.MESSAGES, checkpoint))
    return RenderedPrompt(tuple(tokens + [1] * 25), tuple(boundaries))


def key(account: AccountId, n: int, size: int = DOC) -> BlockHash:
    return chain_keys(scope_seed(account, "us-east-1", "m"), [n + 3] * size, [size])[0]


def write(cache: PrefixCache, clock: FakeClock, account: AccountId, n: int, size: int = DOC) -> CachePlan:
    clock.tick(1)
    return run(cache, chain([n], size), RULES, scope(account=account))


def held(cache: PrefixCache, account: AccountId) -> list[int]:
    """The documents `account` has cached, least recently used first."""
    names = {key(account, n, size): n for n in range(200) for size in (DOC, BIG)}
    return [names[e.key] for e in cache.index.entries_of(account)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(clock: FakeClock) -> PrefixCache:
    return PrefixCache(clock, BUDGET)


def test_a_noisy_neighbour_evicts_only_its_own_oldest_entries(cache: PrefixCache, clock: FakeClock) -> None:
    write(cache, clock, B, 100)
    for n in range(1, 21):  # A writes 100,000 bytes into a 40,000-byte budget
        write(cache, clock, A, n)
        assert cache.index.owner_bytes(A) <= cache.share_bytes == 20_000
    assert held(cache, A) == [17, 18, 19, 20] and held(cache, B) == [100]
    assert {cache.index.removal_reason(key(A, n)) for n in range(1, 17)} == {RemovalReason.QUOTA}
    stats = cache.stats()
    assert stats.removals == {"quota": 16} and stats.quota_evictions_by_account == {A: 16}
    assert write(cache, clock, B, 100).read_tokens == DOC
    again = write(cache, clock, A, 1)
    assert again.read_tokens == 0 and again.reports[0].cause is MissCause.EVICTED


def test_a_lone_account_may_fill_the_whole_budget(cache: PrefixCache, clock: FakeClock) -> None:
    assert cache.max_account_share == 0.5 and cache.limit_bytes(A) == BUDGET
    for n in range(8):
        write(cache, clock, A, n)
    assert held(cache, A) == list(range(8)) and cache.index.num_bytes == BUDGET and cache.stats().removals == {}
    write(cache, clock, A, 8)
    assert held(cache, A) == list(range(1, 9)) and cache.index.removal_reason(key(A, 0)) is RemovalReason.CAPACITY
    assert cache.stats().removals == {"capacity": 1} and cache.stats().quota_evictions_by_account == {}


def test_a_second_account_takes_room_from_the_first_ones_surplus_lazily(cache: PrefixCache, clock: FakeClock) -> None:
    for n in range(8):
        write(cache, clock, A, n)
    assert cache.limit_bytes(B) == 20_000
    write(cache, clock, B, 100)  # A's surplus goes first, and only as much as B needs
    assert held(cache, B) == [100] and held(cache, A) == list(range(1, 8))
    assert cache.index.removal_reason(key(A, 0)) is RemovalReason.QUOTA
    write(cache, clock, A, 8)  # A's own next write cuts it back to its share
    assert held(cache, A) == [5, 6, 7, 8] and held(cache, B) == [100]
    assert cache.stats().quota_evictions_by_account == {A: 5}


def test_pinned_entries_are_never_evicted(cache: PrefixCache, clock: FakeClock) -> None:
    for n in range(5):
        write(cache, clock, A, n)  # alone: 25,000 bytes
    in_flight = [cache.plan(scope(account=A), chain([n]), RULES) for n in range(5)]
    assert [p.read_tokens for p in in_flight] == [DOC] * 5
    write(cache, clock, B, 100)
    write(cache, clock, A, 5)  # over its share, and only the new entry is unpinned
    assert held(cache, A) == [0, 1, 2, 3, 4] and cache.index.owner_bytes(A) == 25_000
    assert cache.index.removal_reason(key(A, 5)) is RemovalReason.QUOTA
    for plan in in_flight:
        cache.release(plan)
        cache.index.check_integrity()
    write(cache, clock, A, 6)
    assert held(cache, A) == [2, 3, 4, 6] and held(cache, B) == [100]


def test_a_snapshot_larger_than_the_share_is_not_stored(
    cache: PrefixCache, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    write(cache, clock, A, 1, size=BIG)
    assert held(cache, A) == [1]  # alone, it fits
    write(cache, clock, B, 100)
    with caplog.at_level(logging.WARNING, logger="cachepoint.cache.manager"):
        plan = write(cache, clock, B, 2, size=BIG)
    assert plan.write_5m_tokens == BIG and held(cache, B) == [100]  # billed as a write, yet not stored
    assert "exceeds account 222222222222's share of the cache (0.5 of 40000 = 20000 bytes)" in caplog.text
    assert cache.stats().removals == {} and held(cache, A) == [1]


def test_rehoming_keeps_per_account_totals(cache: PrefixCache, clock: FakeClock) -> None:
    write(cache, clock, B, 100)
    run(cache, chain([1]), RULES, scope(account=A))
    clock.tick(1)
    plan = run(cache, chain([1, 2]), RULES, scope(account=A))
    assert plan.read_tokens == DOC and cache.index.num_entries == 3 and cache.index.num_blobs == 2
    assert cache.index.bytes_by_owner() == {A: 2 * DOC * 4, B: DOC * 4}


def test_resize_takes_from_accounts_over_their_new_share_first(cache: PrefixCache, clock: FakeClock) -> None:
    write(cache, clock, B, 100)
    for n in range(1, 5):
        write(cache, clock, A, n)
    cache.resize(20_000)  # the share drops to 10,000 bytes; A holds 20,000
    assert held(cache, B) == [100] and held(cache, A) == [2, 3, 4]
    assert cache.index.removal_reason(key(A, 1)) is RemovalReason.QUOTA
    cache.index.check_integrity()


def test_a_share_of_one_lets_any_account_fill_the_budget(clock: FakeClock) -> None:
    cache = PrefixCache(clock, BUDGET, max_account_share=1.0)
    write(cache, clock, B, 100)
    for n in range(1, 9):
        write(cache, clock, A, n)
    assert held(cache, A) == list(range(1, 9)) and held(cache, B) == []  # plain LRU, as without shares
    assert cache.index.removal_reason(key(B, 100)) is RemovalReason.CAPACITY


@pytest.mark.parametrize("share", [0.0, -0.5, 1.5])
def test_a_share_is_a_fraction_of_the_budget(clock: FakeClock, share: float) -> None:
    with pytest.raises(ValueError, match="max_account_share"):
        PrefixCache(clock, BUDGET, max_account_share=share)


# -- property ------------------------------------------------------------------------------------------


@dataclass
class InFlight:
    plan: CachePlan
    prompt: RenderedPrompt
    account: AccountId
    committed: bool = False


requests = st.tuples(
    # plan only / plan and commit, staying in flight (pinned) / plan, commit and release
    st.sampled_from(["plan", "plan+commit", "run", "run"]),
    st.sampled_from([A, B, C]),
    # (content, size) from few values, so that prompts often repeat or extend one another
    st.lists(st.tuples(st.integers(0, 1), st.sampled_from([600, 1100])), min_size=1, max_size=3),
    st.sampled_from([0, 0, 1, 1, 30, 400]),  # seconds to wait first: mostly short, so that entries pile up
)
operations = st.one_of(requests, st.tuples(st.sampled_from(["commit", "release"]), st.integers(0, 7)))


def prompt_of(blocks: list[tuple[int, int]]) -> RenderedPrompt:
    tokens: list[int] = []
    boundaries = []
    for index, (content, size) in enumerate(blocks):
        tokens += [content + 3] * size
        boundaries.append(Boundary(index, len(tokens), Section.MESSAGES, Checkpoint(Ttl.FIVE_MINUTES, f"m.{index}")))
    return RenderedPrompt(tuple(tokens + [1] * 25), tuple(boundaries))


class Model:
    """Drives the cache and checks, around every operation, what shares promise."""

    def __init__(self, budget: int, share: float) -> None:
        self.clock = FakeClock()
        self.cache = PrefixCache(self.clock, budget, max_account_share=share)
        self.in_flight: list[InFlight] = []
        # accounts whose last stored write happened beside another account, with no release since
        self.settled: set[AccountId] = set()

    def apply(self, op: tuple[Any, ...]) -> None:
        if op[0] in ("plan", "plan+commit", "run"):
            kind, account, blocks, wait = op
            self.clock.tick(wait)
            prompt = prompt_of(blocks)
            self.in_flight.append(InFlight(self.cache.plan(scope(account=account), prompt, RULES), prompt, account))
            self.checked()
            if kind != "plan":
                self.apply(("commit", -1))
            if kind == "run":
                self.apply(("release", -1))
        elif self.in_flight and op[0] == "commit":
            flight = self.in_flight[op[1] % len(self.in_flight)]
            if not flight.committed:
                self.commit(flight)
            self.checked()
        elif self.in_flight:
            flight = self.in_flight.pop(op[1] % len(self.in_flight))
            self.cache.release(flight.plan)
            self.settled.discard(flight.account)  # its pinned entries may now keep it over its share
            self.checked()

    def checked(self) -> None:
        self.cache.index.check_integrity()
        self.check_settled()

    def commit(self, flight: InFlight) -> None:
        index, share, writer = self.cache.index, self.cache.share_bytes, flight.account
        snapshots = tuple(encode_snapshot(flight.prompt.tokens[:t]) for t in flight.plan.capture_at)
        stored = bool(snapshots) and snapshots[-1].num_bytes <= self.cache.limit_bytes(writer)
        beside_others = index.others_hold_blobs(writer)
        before = {a: {e.key for e in index.entries_of(a)} for a in (A, B, C)}
        within_before = {a for a in (A, B, C) if index.owner_bytes(a) <= share}
        num_bytes_before = index.num_bytes
        self.cache.commit(flight.plan, Prefilled(snapshots, 1, 0.0))
        flight.committed = True
        if not stored:
            assert index.num_bytes == num_bytes_before, "a snapshot over the limit was stored"
            return
        if beside_others:
            self.settled.add(writer)
        else:
            self.settled.discard(writer)
        for other in within_before - {writer}:
            lost = before[other] - {e.key for e in index.entries_of(other)}
            # an account within its share loses entries only to plain LRU, once nobody else can give room
            assert {index.removal_reason(k) for k in lost} <= {RemovalReason.CAPACITY}
            if lost:
                assert all(self.only_pinned(a) for a in (A, B, C) if index.over_share(a, share))

    def check_settled(self) -> None:
        """The writer-trim promise: over its share only on pinned entries (or once alone again)."""
        share = self.cache.share_bytes
        for account in self.settled:
            assert not self.cache.index.over_share(account, share) or self.only_pinned(account)

    def only_pinned(self, account: AccountId) -> bool:
        return all(self.cache.index.num_pins(e.key) > 0 for e in self.cache.index.entries_of(account))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(operations, min_size=1, max_size=40),
    budget=st.integers(15_000, 50_000),
    share=st.sampled_from([0.25, 0.4, 0.5, 1.0]),
)
def test_shares_hold_under_any_interleaving(ops: list[tuple[Any, ...]], budget: int, share: float) -> None:
    model = Model(budget, share)
    for op in ops:
        model.apply(op)
    while model.in_flight:
        model.apply(("release", 0))
