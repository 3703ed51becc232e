"""The worked examples of caching-semantics §7 on the pure core, with a fake clock."""

from collections.abc import Iterator
from typing import cast

import pytest

from cachepoint.cache.manager import PrefixCache
from cachepoint.cache.plan import MissCause, Outcome
from cachepoint.clock import FakeClock
from cachepoint.models.catalog import Catalog
from cachepoint.types import Ttl
from tests.shared_directory import TwoGateways
from tests.cachekit import captured, counts, rendered, run, scope

CATALOG = Catalog.packaged()
SONNET_45 = CATALOG.get("anthropic.claude-sonnet-4-5-20250929-v1:0").caching  # min 1024, lookback 20
SONNET_37 = CATALOG.get("anthropic.claude-3-7-sonnet-20250219-v1:0").caching
NOVA = CATALOG.get("amazon.nova-pro-v1:0").caching
M5 = Ttl.FIVE_MINUTES
H1 = Ttl.ONE_HOUR


def conversation(turns: int, first: int = 10) -> list[tuple[str, int]]:
    blocks = [(f"b{i}", 200) for i in range(first)]
    blocks += [(f"t{i}", 100) for i in range(first, min(turns, 15))]
    blocks += [(f"u{i}", 40) for i in range(15, turns)]
    return blocks


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["in-memory", "redis"])
def cache(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[PrefixCache]:
    """Every example on one gateway's in-memory index, and on two gateways sharing a Redis directory."""
    if request.param == "in-memory":
        yield PrefixCache(clock, budget_bytes=10**9)
        return
    shared = TwoGateways(clock, 10**9, request.getfixturevalue("redis_server"),
                         request.getfixturevalue("redis_namespace"))  # fmt: skip
    yield cast(PrefixCache, shared)
    shared.close()


def test_lookback_example_rows_1_to_3(cache: PrefixCache, clock: FakeClock) -> None:
    p1 = rendered(conversation(10), {9: M5})
    assert counts(run(cache, p1, SONNET_45), p1) == (0, 2000, 25)
    clock.tick(120)
    p2 = rendered(conversation(15), {14: M5})
    plan = run(cache, p2, SONNET_45)
    assert counts(plan, p2) == (2000, 500, 25)
    assert plan.restore_tokens == 2000 and plan.capture_at == (2500,)
    clock.tick(120)
    p3 = rendered(conversation(40), {39: M5})  # window 39..20 misses the entry at 14
    assert counts(run(cache, p3, SONNET_45), p3) == (0, 3500, 25)


def test_lookback_example_second_checkpoint_and_expiry(cache: PrefixCache, clock: FakeClock) -> None:
    run(cache, rendered(conversation(10), {9: M5}), SONNET_45)
    clock.tick(120)
    p2 = rendered(conversation(15), {14: M5})
    run(cache, p2, SONNET_45)
    clock.tick(120)
    p4 = rendered(conversation(40), {14: M5, 39: M5})
    assert counts(run(cache, p4, SONNET_45), p4) == (2500, 1000, 25)
    clock.tick(301)  # 9:01: entry@15 was refreshed at 4:00 and expired at 9:00
    plan = run(cache, p2, SONNET_45)
    assert counts(plan, p2) == (0, 2500, 25)
    assert plan.reports[0].cause is MissCause.EXPIRED


def test_document_swap_reads_instructions_and_writes_only_the_new_document(
    cache: PrefixCache, clock: FakeClock
) -> None:
    call1 = rendered([("instructions", 1038), ("docA", 36171), ("q1", 9)], {0: M5, 1: M5}, tail=0)
    assert counts(run(cache, call1, SONNET_37), call1) == (0, 37209, 9)
    clock.tick(60)
    call2 = rendered([("instructions", 1038), ("docA", 36171), ("q2", 10)], {0: M5, 1: M5}, tail=0)
    assert counts(run(cache, call2, SONNET_37), call2) == (37209, 0, 10)
    clock.tick(60)
    call3 = rendered([("instructions", 1038), ("docB", 37888), ("q3", 9)], {0: M5, 1: M5}, tail=0)
    plan = run(cache, call3, SONNET_37)
    assert counts(plan, call3) == (1038, 37888, 9)
    assert [(r.outcome, r.cause) for r in plan.reports] == [
        (Outcome.HIT, None),
        (Outcome.WRITTEN, MissCause.PREFIX_CHANGED),
    ]


def test_mixed_ttl_split_and_partial_expiry(cache: PrefixCache, clock: FakeClock) -> None:
    prompt = rendered([("tools+system", 5000), ("history", 3000), ("q", 30)], {0: H1, 1: M5}, tail=0)
    plan = run(cache, prompt, SONNET_45)
    assert (plan.read_tokens, plan.write_1h_tokens, plan.write_5m_tokens) == (0, 5000, 3000)
    clock.tick(180)
    assert counts(run(cache, prompt, SONNET_45), prompt) == (8000, 0, 30)
    clock.tick(360)  # 0:09 — the 5m entry (refreshed at 0:03) died at 0:08, the 1h one lives
    plan = run(cache, prompt, SONNET_45)
    assert (plan.read_tokens, plan.write_1h_tokens, plan.write_5m_tokens) == (5000, 0, 3000)


def test_one_hour_on_a_five_minute_model_is_downgraded(cache: PrefixCache, clock: FakeClock) -> None:
    prompt = rendered([("doc", 2000)], {0: H1})
    plan = run(cache, prompt, SONNET_37)
    assert (plan.write_1h_tokens, plan.write_5m_tokens) == (0, 2000)
    clock.tick(301)
    assert run(cache, prompt, SONNET_37).read_tokens == 0


def test_below_minimum_is_silent_and_stores_nothing(cache: PrefixCache) -> None:
    prompt = rendered([("sys", 900), ("q", 20)], {0: M5}, tail=0)
    for _ in range(2):
        plan = run(cache, prompt, SONNET_37)
        assert counts(plan, prompt) == (0, 0, 920)
        assert plan.reports[0].outcome is Outcome.BELOW_MINIMUM
    assert cache.index.num_entries == 0


def test_minimum_is_cumulative_so_only_later_checkpoints_count(cache: PrefixCache) -> None:
    prompt = rendered([("a", 600), ("b", 600), ("q", 5)], {0: M5, 1: M5})
    plan = run(cache, prompt, SONNET_37)
    assert [r.outcome for r in plan.reports] == [Outcome.BELOW_MINIMUM, Outcome.WRITTEN]
    assert counts(plan, prompt) == (0, 1200, 30)


def test_nova_ceiling_and_single_block_lookback(cache: PrefixCache) -> None:
    over = rendered([("doc", 20001)], {0: M5})
    plan = run(cache, over, NOVA)
    assert plan.reports[0].outcome is Outcome.OVER_CEILING and counts(plan, over) == (0, 0, 20026)
    run(cache, rendered([("doc", 1500), ("turn", 100)], {0: M5}), NOVA)
    later = rendered([("doc", 1500), ("turn", 100)], {1: M5})  # Nova looks at the checkpoint only
    assert counts(run(cache, later, NOVA), later) == (0, 1600, 25)


def test_account_region_and_model_scope_the_keys(cache: PrefixCache) -> None:
    prompt = rendered([("doc", 2000)], {0: M5})
    run(cache, prompt, SONNET_45, scope(account="111111111111"))
    for other in (scope(account="222222222222"), scope(region="eu-west-1"), scope(model="other")):
        plan = run(cache, prompt, SONNET_45, other)
        assert plan.read_tokens == 0 and plan.reports[0].cause is MissCause.NEW
    assert run(cache, prompt, SONNET_45, scope(account="111111111111")).read_tokens == 2000


def test_nested_checkpoints_share_one_snapshot(cache: PrefixCache) -> None:
    prompt = rendered([("a", 1100), ("b", 1100), ("c", 1100)], {0: M5, 1: M5, 2: M5})
    run(cache, prompt, SONNET_45)
    assert cache.index.num_entries == 3 and len(cache.store) == 1
    assert cache.index.num_bytes == 3300 * 4  # the fake engine stores 4 bytes per token


def test_a_longer_write_rehomes_older_entries_and_frees_their_snapshot(cache: PrefixCache, clock: FakeClock) -> None:
    run(cache, rendered([("a", 1100), ("q", 5)], {0: M5}), SONNET_45)
    clock.tick(10)
    plan = run(cache, rendered([("a", 1100), ("b", 1100), ("q", 5)], {0: M5, 1: M5}), SONNET_45)
    assert plan.read_tokens == 1100 and plan.write_5m_tokens == 1100
    assert len(cache.store) == 1 and cache.index.num_bytes == 2200 * 4


def test_concurrent_identical_requests_release_cleanly(cache: PrefixCache) -> None:
    """Two requests write the same prefix; a third reads the first one's entry before the second commits."""
    short, long = rendered([("a", 1100)], {0: M5}), rendered([("a", 1100), ("b", 1100)], {0: M5, 1: M5})
    run(cache, short, SONNET_45)
    first, second = cache.plan(scope(), long, SONNET_45), cache.plan(scope(), long, SONNET_45)
    cache.commit(first, captured(long, first))
    reader = cache.plan(scope(), long, SONNET_45)
    assert reader.read_tokens == 2200
    cache.commit(second, captured(long, second))  # replaces the entry
    for plan in (first, second, reader):
        cache.release(plan)
        cache.index.check_integrity()
    assert cache.index.num_entries == 2 and len(cache.store) == 1
