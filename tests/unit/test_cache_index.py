"""Exact states of the pure index: deadlines, refresh, LRU eviction order, pins, blob ref counts."""

from collections.abc import Callable

import pytest

from cachepoint.cache.index import PrefixIndex, RemovalReason
from cachepoint.cache.keys import BlockHash, chain_keys, scope_seed
from cachepoint.types import Ttl

SCOPE = scope_seed("111122223333", "us-east-1", "m")
K = [BlockHash(bytes([i]) * 32) for i in range(8)]


@pytest.fixture
def index() -> PrefixIndex:
    return PrefixIndex()


def checked(index: PrefixIndex) -> Callable[[], None]:
    return index.check_integrity


def add(index: PrefixIndex, key: BlockHash, num_tokens: int, now: float, ttl: Ttl = Ttl.FIVE_MINUTES) -> None:
    blob = index.new_blob(num_tokens, num_tokens * 10)
    index.insert(key, SCOPE, num_tokens, ttl, blob, now)
    index.check_integrity()


def test_keys_chain_and_scope() -> None:
    a = chain_keys(SCOPE, [1, 2, 3, 4], [2, 4])
    b = chain_keys(SCOPE, [1, 2, 3, 5], [2, 4])
    assert a[0] == b[0] and a[1] != b[1]
    assert chain_keys(scope_seed("111122223333", "us-west-2", "m"), [1, 2, 3, 4], [2, 4])[0] != a[0]


def test_expiry_is_exact_and_refreshed_by_touch(index: PrefixIndex) -> None:
    add(index, K[0], 100, now=0.0)
    assert index.live(K[0], 299.9) is not None and index.live(K[0], 300.0) is None
    index.touch(K[0], 200.0)
    assert index.expire(300.0) == [] and index.live(K[0], 499.9) is not None
    freed = index.expire(500.0)
    assert len(freed) == 1 and index.num_entries == 0 and index.num_bytes == 0
    assert index.removal_reason(K[0]) is RemovalReason.TTL
    index.check_integrity()


def test_one_hour_entries_outlive_five_minute_ones(index: PrefixIndex) -> None:
    add(index, K[0], 10, 0.0, Ttl.ONE_HOUR)
    add(index, K[1], 20, 0.0)
    index.expire(301.0)
    assert index.live(K[0], 301.0) is not None and index.live(K[1], 301.0) is None
    assert index.stats.removals[RemovalReason.TTL] == 1


def test_capacity_eviction_is_lru_and_skips_pinned(index: PrefixIndex) -> None:
    for i in range(4):
        add(index, K[i], 100, float(i))  # 1000 bytes each
    index.touch(K[0], 10.0)  # K0 becomes most recently used
    index.pin(K[1])
    assert index.lru_keys() == [K[1], K[2], K[3], K[0]]
    freed = index.evict_to(2000)
    assert len(freed) == 2 and index.lru_keys() == [K[1], K[0]]
    assert index.removal_reason(K[2]) is RemovalReason.CAPACITY and index.removal_reason(K[3]) is RemovalReason.CAPACITY
    index.unpin(K[1])
    index.evict_to(1000)
    assert index.lru_keys() == [K[0]]
    index.check_integrity()


def test_entries_share_a_blob_until_the_last_one_goes(index: PrefixIndex) -> None:
    blob = index.new_blob(300, 3000)
    index.insert(K[0], SCOPE, 100, Ttl.ONE_HOUR, blob, 0.0)
    index.insert(K[1], SCOPE, 300, Ttl.FIVE_MINUTES, blob, 0.0)
    assert index.blob(blob).refs == 2 and index.num_bytes == 3000
    assert index.expire(300.0) == []  # K1 gone, K0 still points into the blob
    assert index.num_bytes == 3000 and index.blob(blob).refs == 1
    assert index.expire(3600.0) == [blob] and index.num_bytes == 0
    index.check_integrity()


def test_rehome_frees_the_older_snapshot(index: PrefixIndex) -> None:
    add(index, K[0], 100, 0.0)
    old = index.live(K[0], 1.0).blob_id  # type: ignore[union-attr]
    new = index.new_blob(200, 2000)
    index.insert(K[1], SCOPE, 200, Ttl.FIVE_MINUTES, new, 1.0)
    assert index.rehome(K[0], new) == [old]
    assert index.num_bytes == 2000 and index.blob(new).refs == 2
    index.check_integrity()


def test_replacing_an_entry_with_the_same_blob_keeps_it(index: PrefixIndex) -> None:
    blob = index.new_blob(100, 1000)
    index.insert(K[0], SCOPE, 100, Ttl.FIVE_MINUTES, blob, 0.0)
    assert index.insert(K[0], SCOPE, 100, Ttl.FIVE_MINUTES, blob, 5.0) == []
    assert index.blob(blob).refs == 1 and index.live(K[0], 304.0) is not None
    index.check_integrity()
