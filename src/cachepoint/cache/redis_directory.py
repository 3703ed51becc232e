"""The shared cache directory in Redis (`[cache] directory = "redis://HOST:PORT/DB"`).

Layout under one namespace (N):
- `N:e:<key>`    hash: scope, tokens, ttl, exp (deadline, ms on the cache's clock), owner, label, holder,
                 ref, btok, bbytes; Redis's own expiry (PEXPIREAT) at the deadline, refreshed on every hit;
- `N:s:<scope>`  sorted set of the scope's keys by deadline (whether a scope holds anything: the miss cause
                 `prefix-changed` against `new`); `N:h:<holder>` the same per replica (dropping a dead one);
- `N:t:<key>`    why an entry went (a day), so a miss elsewhere says `expired`, `evicted`, `replica-lost`;
- `N:replicas`   hash: each replica's health, load and cached bytes as a gateway last saw them.
Every update that must not interleave with another gateway's (insert-or-replace, refresh, compare-and-
delete, drop a holder) is one Lua script. Blocking calls with short timeouts: the cache runs them on its
own thread, never on the event loop. A standalone Redis (the scripts build key names, as cluster mode
forbids).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import redis
import redis.exceptions

from cachepoint.cache.directory import BlobRef, DirectoryUnavailable, Found, ReplicaState, SharedEntry
from cachepoint.cache.index import RemovalReason
from cachepoint.cache.keys import BlockHash
from cachepoint.types import AccountId, Ttl

TOMBSTONE_MS = 86_400_000

# Sorted sets keep their members' deadlines as scores: members past `now` are trimmed on each write, and a
# set lives as long as its latest member (its own expiry moves forward, never back).
_PUBLISH = """
local ns, key, scope, holder = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local exp, wall, now = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local ekey = ns .. ':e:' .. key
local old = redis.call('HGET', ekey, 'holder')
if old and old ~= holder then redis.call('ZREM', ns .. ':h:' .. old, key) end
redis.call('DEL', ekey)
redis.call('HSET', ekey, 'scope', scope, 'holder', holder, 'exp', ARGV[5], unpack(ARGV, 8))
redis.call('PEXPIREAT', ekey, wall)
for _, set in ipairs({ns .. ':s:' .. scope, ns .. ':h:' .. holder}) do
  redis.call('ZADD', set, exp, key)
  redis.call('ZREMRANGEBYSCORE', set, '-inf', now)
  if redis.call('PEXPIRETIME', set) < wall then redis.call('PEXPIREAT', set, wall) end
end
redis.call('DEL', ns .. ':t:' .. key)
return 1
"""

_REFRESH = """
local ns, key, exp, wall = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local ekey = ns .. ':e:' .. key
local e = redis.call('HMGET', ekey, 'scope', 'holder')
if not e[1] then return 0 end
redis.call('HSET', ekey, 'exp', exp)
redis.call('PEXPIREAT', ekey, wall)
for _, set in ipairs({ns .. ':s:' .. e[1], ns .. ':h:' .. e[2]}) do
  redis.call('ZADD', set, exp, key)
  if redis.call('PEXPIRETIME', set) < wall then redis.call('PEXPIREAT', set, wall) end
end
return 1
"""

_REMOVE = """
local ns, key, holder, ref, reason = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ekey = ns .. ':e:' .. key
local e = redis.call('HMGET', ekey, 'scope', 'holder', 'ref')
if not e[1] or e[2] ~= holder or e[3] ~= ref then return 0 end
redis.call('DEL', ekey)
redis.call('ZREM', ns .. ':s:' .. e[1], key)
redis.call('ZREM', ns .. ':h:' .. holder, key)
redis.call('SET', ns .. ':t:' .. key, reason, 'PX', ARGV[6])
return 1
"""

_DROP_HOLDER = """
local ns, holder, reason = ARGV[1], ARGV[2], ARGV[3]
local hkey = ns .. ':h:' .. holder
local n = 0
for _, key in ipairs(redis.call('ZRANGE', hkey, 0, -1)) do
  local ekey = ns .. ':e:' .. key
  local e = redis.call('HMGET', ekey, 'scope', 'holder')
  if e[1] and e[2] == holder then
    redis.call('DEL', ekey)
    redis.call('ZREM', ns .. ':s:' .. e[1], key)
    redis.call('SET', ns .. ':t:' .. key, reason, 'PX', ARGV[4])
    n = n + 1
  end
end
redis.call('DEL', hkey)
return n
"""


class RedisDirectory:
    def __init__(self, url: str, namespace: str = "cachepoint", timeout_s: float = 0.5) -> None:
        self.url = url
        self.namespace = namespace
        self._redis = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, health_check_interval=10
        )
        self._publish = self._redis.register_script(_PUBLISH)
        self._refresh = self._redis.register_script(_REFRESH)
        self._remove = self._redis.register_script(_REMOVE)
        self._drop_holder = self._redis.register_script(_DROP_HOLDER)

    def lookup(self, keys: Sequence[BlockHash]) -> Found:
        if not keys:
            return Found()
        ns = self.namespace
        with _translated():
            pipe = self._redis.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(f"{ns}:e:{key.hex()}")
                pipe.get(f"{ns}:t:{key.hex()}")
            replies = pipe.execute()
        found = Found()
        for i, key in enumerate(keys):
            row, tomb = replies[2 * i], replies[2 * i + 1]
            if row:
                found.entries[key] = _entry(key, row)
            elif tomb is not None:
                found.tombstones[key] = _reason(tomb)
        return found

    def scope_live(self, scope: BlockHash, now_s: float) -> bool:
        with _translated():
            return bool(self._redis.zcount(f"{self.namespace}:s:{scope.hex()}", f"({_ms(now_s)}", "+inf"))

    def publish(self, entries: Sequence[SharedEntry], now_s: float) -> None:
        with _translated():
            pipe = self._redis.pipeline(transaction=False)
            for e in entries:
                fields: list[str | int] = ["tokens", e.num_tokens, "ttl", e.ttl.value, "owner", e.owner,
                                           "label", e.label,
                          "ref", e.blob.ref, "btok", e.blob_tokens, "bbytes", e.blob_bytes]  # fmt: skip
                args: list[str | int] = [self.namespace, e.key.hex(), e.scope.hex(), e.blob.holder, _ms(e.expires_at_s),
                        _wall_ms(e.expires_at_s, now_s), _ms(now_s), *fields]  # fmt: skip
                self._publish(args=args, client=pipe)
            pipe.execute()

    def refresh(self, deadlines: Sequence[tuple[BlockHash, float]], now_s: float) -> None:
        with _translated():
            pipe = self._redis.pipeline(transaction=False)
            for key, expires_at_s in deadlines:
                args: list[str | int] = [self.namespace, key.hex(), _ms(expires_at_s), _wall_ms(expires_at_s, now_s)]
                self._refresh(args=args, client=pipe)
            pipe.execute()

    def remove(self, removals: Sequence[tuple[BlockHash, BlobRef, RemovalReason]]) -> None:
        with _translated():
            pipe = self._redis.pipeline(transaction=False)
            for key, blob, reason in removals:
                args: list[str | int] = [self.namespace, key.hex(), blob.holder, blob.ref, reason.value, TOMBSTONE_MS]
                self._remove(args=args, client=pipe)
            pipe.execute()

    def drop_holder(self, holder: str, reason: RemovalReason) -> int:
        with _translated():
            return int(self._drop_holder(args=[self.namespace, holder, reason.value, TOMBSTONE_MS]))

    def report_replicas(self, states: Sequence[ReplicaState]) -> None:
        if not states:
            return
        with _translated():
            self._redis.hset(f"{self.namespace}:replicas", mapping={s.name: json.dumps(s.__dict__) for s in states})

    def replicas(self) -> list[ReplicaState]:
        with _translated():
            rows = self._redis.hgetall(f"{self.namespace}:replicas")
        states = []
        for raw in rows.values():
            try:
                states.append(ReplicaState(**json.loads(raw)))
            except (ValueError, TypeError):
                continue  # written by another version: skipped, not fatal
        return states

    def close(self) -> None:
        self._redis.close()


@contextmanager
def _translated() -> Iterator[None]:
    """Every Redis failure is one `DirectoryUnavailable` to the cache."""
    try:
        yield
    except redis.exceptions.RedisError as error:
        raise DirectoryUnavailable(f"{type(error).__name__}: {error}") from error


def _entry(key: BlockHash, row: dict[bytes, bytes]) -> SharedEntry:
    def text(name: str) -> str:
        return row[name.encode()].decode()

    return SharedEntry(
        key=key,
        scope=BlockHash(bytes.fromhex(text("scope"))),
        num_tokens=int(text("tokens")),
        ttl=Ttl(text("ttl")),
        expires_at_s=int(text("exp")) / 1000,
        owner=AccountId(text("owner")),
        label=text("label"),
        blob=BlobRef(text("holder"), text("ref")),
        blob_tokens=int(text("btok")),
        blob_bytes=int(text("bbytes")),
    )


def _reason(raw: bytes) -> RemovalReason:
    try:
        return RemovalReason(raw.decode())
    except ValueError:
        return RemovalReason.CAPACITY


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _wall_ms(expires_at_s: float, now_s: float) -> int:
    """The deadline on Redis's clock: the same distance ahead as on the cache's (equal under the system clock;
    a test's fake clock only makes Redis keep entries longer, and the cache's clock decides liveness)."""
    return int((time.time() + max(expires_at_s - now_s, 0.001)) * 1000)
