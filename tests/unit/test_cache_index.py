"""Exact states of the pure index: deadlines, refresh, LRU eviction order, pins, blob ref counts, owner shares."""

from collections.abc import Callable

import pytest

from cachepoint.cache.index import PrefixIndex, RemovalReason
from cachepoint.cache.keys import BlockHash, chain_keys, scope_seed
from cachepoint.types import AccountId, Ttl

A = AccountId("111122223333")
B = AccountId("444455556666")
SCOPE = scope_seed(A, "us-east-1", "m")
SCOPE_B = scope_seed(B, "us-east-1", "m")
K = [BlockHash(bytes([i]) * 32) for i in range(8)]


@pytest.fixture
def index() -> PrefixIndex:
    return PrefixIndex()


def checked(index: PrefixIndex) -> Callable[[], None]:
    return index.check_integrity


def add(
    index: PrefixIndex, key: BlockHash, num_tokens: int, now: float, ttl: Ttl = Ttl.FIVE_MINUTES, owner: AccountId = A
) -> None:
    blob = index.new_blob(num_tokens, num_tokens * 10, owner)
    index.insert(key, SCOPE if owner == A else SCOPE_B, num_tokens, ttl, blob, now)
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
    blob = index.new_blob(300, 3000, A)
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
    new = index.new_blob(200, 2000, A)
    index.insert(K[1], SCOPE, 200, Ttl.FIVE_MINUTES, new, 1.0)
    assert index.rehome(K[0], new) == [old]
    assert index.num_bytes == 2000 and index.blob(new).refs == 2
    index.check_integrity()


def test_replacing_an_entry_with_the_same_blob_keeps_it(index: PrefixIndex) -> None:
    blob = index.new_blob(100, 1000, A)
    index.insert(K[0], SCOPE, 100, Ttl.FIVE_MINUTES, blob, 0.0)
    assert index.insert(K[0], SCOPE, 100, Ttl.FIVE_MINUTES, blob, 5.0) == []
    assert index.blob(blob).refs == 1 and index.live(K[0], 304.0) is not None
    index.check_integrity()


def test_owner_totals_follow_blobs_through_insert_rehome_and_expiry(index: PrefixIndex) -> None:
    add(index, K[0], 100, 0.0)
    add(index, K[1], 50, 0.0, owner=B)
    assert index.bytes_by_owner() == {A: 1000, B: 500}
    new = index.new_blob(200, 2000, A)
    index.insert(K[2], SCOPE, 200, Ttl.FIVE_MINUTES, new, 1.0)
    index.rehome(K[0], new)  # frees A's 1000-byte blob
    assert index.bytes_by_owner() == {A: 2000, B: 500} and index.num_bytes == 2500
    index.check_integrity()
    index.expire(300.0)  # K0 and B's K1 (written at 0) go; K2 still holds the blob K0 was re-homed into
    assert index.lru_keys() == [K[2]] and index.bytes_by_owner() == {A: 2000} and index.owner_bytes(B) == 0
    index.check_integrity()


def test_an_entry_never_moves_into_another_owners_blob(index: PrefixIndex) -> None:
    add(index, K[0], 100, 0.0)
    foreign = index.new_blob(200, 2000, B)
    with pytest.raises(AssertionError, match="own owner's blob"):
        index.rehome(K[0], foreign)


def test_a_lone_owner_is_never_over_its_share(index: PrefixIndex) -> None:
    add(index, K[0], 100, 0.0)
    add(index, K[1], 100, 0.0)
    assert not index.over_share(A, 1000) and not index.others_hold_blobs(A)
    assert index.trim_owner(A, 1000) == [] and index.num_entries == 2
    add(index, K[2], 10, 0.0, owner=B)
    assert index.others_hold_blobs(A) and index.others_hold_blobs(AccountId("777788889999"))
    assert index.over_share(A, 1000) and not index.over_share(B, 1000)


def test_trim_owner_drops_only_its_own_unpinned_lru_entries(index: PrefixIndex) -> None:
    add(index, K[0], 100, 0.0, owner=B)  # the oldest entry of all
    for i in range(1, 5):
        add(index, K[i], 100, float(i))
    index.pin(K[1])
    freed = index.trim_owner(A, 2000)
    assert len(freed) == 2 and index.lru_keys() == [K[0], K[1], K[4]]
    assert index.removal_reason(K[2]) is RemovalReason.QUOTA and index.removal_reason(K[3]) is RemovalReason.QUOTA
    assert index.stats.removals == {RemovalReason.QUOTA: 2} and index.stats.quota_removals_by_owner == {A: 2}
    assert [e.key for e in index.entries_of(A)] == [K[1], K[4]]
    index.check_integrity()


def test_pinned_entries_can_keep_an_owner_over_its_share(index: PrefixIndex) -> None:
    add(index, K[0], 10, 0.0, owner=B)
    add(index, K[1], 100, 1.0)
    add(index, K[2], 100, 2.0)
    index.pin(K[1])
    index.pin(K[2])
    assert index.trim_owner(A, 1000) == [] and index.owner_bytes(A) == 2000
    index.check_integrity()


def test_eviction_takes_owners_over_their_share_first(index: PrefixIndex) -> None:
    add(index, K[0], 100, 0.0, owner=B)  # globally least recently used, but B is within its share
    for i in range(1, 4):
        add(index, K[i], 100, float(i))  # A holds 3000 of a 2000-byte share
    assert index.evict_to(3000, share_bytes=2000) != [] and index.lru_keys() == [K[0], K[2], K[3]]
    assert index.removal_reason(K[1]) is RemovalReason.QUOTA
    index.evict_to(1000, share_bytes=2000)  # nobody is over its share now: plain LRU
    assert index.lru_keys() == [K[3]]
    assert index.removal_reason(K[0]) is RemovalReason.CAPACITY and index.removal_reason(K[2]) is RemovalReason.CAPACITY
    assert index.stats.removals == {RemovalReason.QUOTA: 1, RemovalReason.CAPACITY: 2}
    assert index.stats.quota_removals_by_owner == {A: 1}
    index.check_integrity()


def test_without_a_share_eviction_is_plain_lru(index: PrefixIndex) -> None:
    add(index, K[0], 100, 0.0, owner=B)
    add(index, K[1], 100, 1.0)
    add(index, K[2], 100, 2.0)
    index.evict_to(2000)
    assert index.lru_keys() == [K[1], K[2]] and index.removal_reason(K[0]) is RemovalReason.CAPACITY
    index.check_integrity()


def test_a_pin_outlives_the_entry_being_written_again(index: PrefixIndex) -> None:
    add(index, K[0], 100, 0.0)
    index.pin(K[0])  # a request in flight reads K0 ...
    add(index, K[0], 100, 1.0)  # ... while a concurrent one writes the same prefix again
    assert index.num_pins(K[0]) == 1 and index.evict_to(0) == [] and index.num_entries == 1
    index.unpin(K[0])
    assert index.num_pins(K[0]) == 0 and len(index.evict_to(0)) == 1
    index.check_integrity()


def test_a_pin_outlives_expiry_and_a_new_write(index: PrefixIndex) -> None:
    add(index, K[0], 100, 0.0)
    index.pin(K[0])
    index.expire(300.0)  # pins protect from capacity only
    assert index.num_entries == 0 and index.num_pins(K[0]) == 1
    add(index, K[0], 100, 400.0)
    index.unpin(K[0])
    assert index.num_pins(K[0]) == 0
    with pytest.raises(AssertionError, match="unpin without pin"):
        index.unpin(K[0])
    index.check_integrity()
