"""The cache diagnosis's turns in a real Redis (started by scripts/services.sh): shared by gateways, per account,
bounded in count and bytes by the script, expired by Redis, and quiet when Redis is away."""

from __future__ import annotations

import time

import pytest
import redis

from cachepoint.service.shared_turns import SharedTurns
from tests.unit.test_diagnosis import ANSWER, FIRST, PREVIOUS, prompt, turn

ACCOUNT, OTHER = "111122223333", "444455556666"


@pytest.fixture
def shared(redis_server: str, redis_namespace: str) -> SharedTurns:
    return SharedTurns(redis_server, redis_namespace)


def test_one_gateway_remembers_what_another_recalls(redis_server: str, redis_namespace: str) -> None:
    first, second = SharedTurns(redis_server, redis_namespace), SharedTurns(redis_server, redis_namespace)
    first.remember(ACCOUNT, "msg_a", PREVIOUS)
    assert second.recall(ACCOUNT, "msg_a") == PREVIOUS
    assert second.recall(OTHER, "msg_a") is None and second.recall(ACCOUNT, None) is None
    first.close()
    second.close()


def test_the_oldest_turns_go_past_the_count_or_the_bytes(redis_server: str, redis_namespace: str) -> None:
    by_count = SharedTurns(redis_server, redis_namespace, max_turns=2)
    for name in ("a", "b", "c"):
        by_count.remember(ACCOUNT, name, PREVIOUS)
    assert [by_count.recall(ACCOUNT, n) is not None for n in "abc"] == [False, True, True]
    long = turn(prompt(*[FIRST, ANSWER] * 1000))  # 2,000 messages: ~48 KB encoded
    by_bytes = SharedTurns(redis_server, redis_namespace + "-bytes", max_bytes=100_000)
    for name in ("a", "b", "c"):
        by_bytes.remember(ACCOUNT, name, long)
    assert [by_bytes.recall(ACCOUNT, n) is not None for n in "abc"] == [False, True, True]
    by_bytes.remember(ACCOUNT, "c", PREVIOUS)  # replacing a turn releases its bytes: nothing more goes
    assert by_bytes.recall(ACCOUNT, "b") == long and by_bytes.recall(ACCOUNT, "c") == PREVIOUS


def test_turns_expire_and_damaged_values_are_not_turns(
    shared: SharedTurns, redis_server: str, redis_namespace: str
) -> None:
    quick = SharedTurns(redis_server, redis_namespace, keep_s=0.1)
    quick.remember(ACCOUNT, "msg_q", PREVIOUS)
    assert quick.recall(ACCOUNT, "msg_q") == PREVIOUS
    time.sleep(0.3)
    assert quick.recall(ACCOUNT, "msg_q") is None
    redis.Redis.from_url(redis_server).set(f"{redis_namespace}:turn:{ACCOUNT}:msg_bad", b'{"model": 7}')
    assert shared.recall(ACCOUNT, "msg_bad") is None


def test_redis_away_means_nothing_remembered_and_nothing_found(caplog: pytest.LogCaptureFixture) -> None:
    away = SharedTurns("redis://127.0.0.1:1/0", "nowhere", timeout_s=0.2)
    away.remember(ACCOUNT, "msg_a", PREVIOUS)
    assert away.recall(ACCOUNT, "msg_a") is None
    assert sum("Redis unreachable" in r.message for r in caplog.records) == 1  # said once, not per call

