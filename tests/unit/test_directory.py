"""The Redis cache directory's own rules (against a real Redis from scripts/services.sh), and the gateways'
side of it: two caches sharing one directory, a dead replica's entries, and planning cold while it is away."""

from __future__ import annotations

import time
from dataclasses import replace
from collections.abc import Iterator

import pytest
import redis

from cachepoint.cache.directory import BlobRef, SharedEntry
from cachepoint.cache.index import RemovalReason
from cachepoint.cache.keys import BlockHash
from cachepoint.cache.manager import PrefixCache
from cachepoint.cache.mirror import DirectoryMirror
from cachepoint.cache.plan import MissCause
from cachepoint.cache.redis_directory import RedisDirectory
from cachepoint.clock import FakeClock
from cachepoint.engine.protocol import Prefilled, Snapshot
from cachepoint.models.catalog import Catalog
from cachepoint.types import AccountId, Ttl
from tests.cachekit import rendered, run, scope
from tests.shared_directory import NODE, TwoGateways

SONNET_45 = Catalog.packaged().get("anthropic.claude-sonnet-4-5-20250929-v1:0").caching
KEY, SCOPE = BlockHash(b"k" * 32), BlockHash(b"s" * 32)


def entry(ref: str, expires_at_s: float, holder: str = "node://a", key: BlockHash = KEY) -> SharedEntry:
    return SharedEntry(key, SCOPE, 1200, Ttl.FIVE_MINUTES, expires_at_s, AccountId("111122223333"), "us-east-1",
                       BlobRef(holder, ref), 1500, 6000)  # fmt: skip


@pytest.fixture
def directory(redis_server: str, redis_namespace: str) -> Iterator[RedisDirectory]:
    made = RedisDirectory(redis_server, redis_namespace)
    yield made
    made.close()


def test_publish_lookup_refresh_and_redis_own_expiry(directory: RedisDirectory, redis_server: str) -> None:
    now = 1_700_000_000.0
    directory.publish([entry("1", now + 300)], now)
    assert directory.lookup([KEY]).entries[KEY] == entry("1", now + 300)
    assert directory.scope_live(SCOPE, now) and not directory.scope_live(SCOPE, now + 300)
    directory.refresh([(KEY, now + 600)], now + 300)
    assert directory.lookup([KEY]).entries[KEY].expires_at_s == now + 600
    ttl_ms = redis.Redis.from_url(redis_server).pttl(f"{directory.namespace}:e:{KEY.hex()}")
    assert 290_000 < ttl_ms <= 300_000  # Redis expires it by itself, as far ahead as the refreshed deadline is


def test_a_removal_spares_a_newer_write_of_the_same_key(directory: RedisDirectory) -> None:
    now = time.time()
    directory.publish([entry("1", now + 300)], now)
    directory.publish([entry("2", now + 300, holder="node://b")], now)  # written again elsewhere
    directory.remove([(KEY, BlobRef("node://a", "1"), RemovalReason.CAPACITY)])
    assert directory.lookup([KEY]).entries[KEY].blob == BlobRef("node://b", "2")
    directory.remove([(KEY, BlobRef("node://b", "2"), RemovalReason.TTL)])
    found = directory.lookup([KEY])
    assert not found.entries and found.tombstones == {KEY: RemovalReason.TTL}


def test_dropping_a_replica_drops_only_what_it_holds(directory: RedisDirectory) -> None:
    now = time.time()
    other = BlockHash(b"o" * 32)
    directory.publish([entry("1", now + 300), entry("2", now + 300, holder="node://b", key=other)], now)
    assert directory.drop_holder("node://a", RemovalReason.REPLICA_LOST) == 1
    found = directory.lookup([KEY, other])
    assert found.tombstones == {KEY: RemovalReason.REPLICA_LOST} and set(found.entries) == {other}


def test_a_dead_replicas_entries_miss_as_replica_lost_on_every_gateway(redis_server: str, redis_namespace: str) -> None:
    clock = FakeClock()
    gateways = TwoGateways(clock, 10**9, redis_server, redis_namespace)
    prompt = rendered([("a", 1500)], {0: Ttl.FIVE_MINUTES})
    where = scope()
    run(gateways, prompt, SONNET_45, where)  # written through gateway 0, held by NODE
    gateways.gateways[0].drop_holder(NODE)  # gateway 0 saw the node die
    plan = run(gateways, prompt, SONNET_45, where)  # through gateway 1
    assert plan.read_tokens == 0 and plan.reports[0].cause is MissCause.REPLICA_LOST
    gateways.close()


def test_while_the_directory_is_down_calls_are_planned_cold_and_say_so(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    unreachable = RedisDirectory("redis://127.0.0.1:1/0", "nowhere", timeout_s=0.2)
    cache = PrefixCache(clock, 10**9, mirror=DirectoryMirror(unreachable, "gw"))
    prompt = rendered([("a", 1500)], {0: Ttl.FIVE_MINUTES})
    plans = [run(cache, prompt, SONNET_45) for _ in range(3)]
    assert [p.read_tokens for p in plans] == [0, 0, 0]  # never a read the directory could not confirm
    assert {p.reports[0].cause for p in plans} == {MissCause.DIRECTORY_DOWN}
    assert plans[0].write_5m_tokens == 1500  # Bedrock's usage for a miss: the prefix is written
    assert caplog.text.count("cache directory unreachable") == 1


def test_a_read_on_a_replica_that_does_not_hold_it_is_billed_as_a_read_recomputed_and_moves_there(
    redis_server: str, redis_namespace: str
) -> None:
    gateways = TwoGateways(FakeClock(), 10**9, redis_server, redis_namespace)
    prompt = rendered([("a", 1500)], {0: Ttl.FIVE_MINUTES})
    run(gateways, prompt, SONNET_45)  # held by NODE
    one, two = gateways.gateways
    other = replace(scope(), runs_on="node://other")
    elsewhere = two.plan(other, prompt, SONNET_45)
    assert elsewhere.read_tokens == 1500 and elsewhere.restore is None and elsewhere.restore_tokens == 0
    assert elsewhere.reports[0].compact() == "hit:1500:5m:recomputed" and elsewhere.capture_at == (1500,)
    kept = Snapshot(b"", 1500, 6000, holder="node://other", ref="7")
    two.commit(elsewhere, Prefilled((kept,), prompt.num_tokens, 0.0))
    two.release(elsewhere)
    moved = one.plan(other, prompt, SONNET_45)  # through the other gateway: the entry now lives on node://other
    assert moved.reports[0].compact() == "hit:1500:5m:ram" and moved.restore is not None
    assert (moved.restore.holder, moved.restore.ref, moved.restore_tokens) == ("node://other", "7", 1500)
    one.release(moved)
    gateways.close()
