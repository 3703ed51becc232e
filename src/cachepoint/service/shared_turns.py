"""The cache diagnosis's turns in the cluster's Redis (`[cache] directory`), so that a turn answered by one
gateway can be named by the next turn on another. The same bounds as one gateway's memory, kept by a Lua script:
each turn expires after an hour (Redis's own expiry), and past the count or byte budget the oldest turns go.
Redis away: nothing is remembered and nothing is found (`previous_message_not_found`), never an error."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis

from cachepoint.prompt.fingerprint import PromptFingerprint
from cachepoint.service.diagnoses import KEEP_S, MAX_BYTES, MAX_TURNS

log = logging.getLogger(__name__)

# KEYS: the turn, the index (sorted by time), the sizes (hash). ARGV: value, now (ms), keep (ms), max turns, max bytes
_REMEMBER = """
local old = tonumber(redis.call('HGET', KEYS[3], KEYS[1]) or '0')
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], KEYS[1])
redis.call('HSET', KEYS[3], KEYS[1], string.len(ARGV[1]))
local total = redis.call('HINCRBY', KEYS[3], '#bytes', string.len(ARGV[1]) - old)
while redis.call('ZCARD', KEYS[2]) > tonumber(ARGV[4]) or total > tonumber(ARGV[5]) do
  local oldest = redis.call('ZPOPMIN', KEYS[2])[1]
  if not oldest then break end
  total = redis.call('HINCRBY', KEYS[3], '#bytes', -tonumber(redis.call('HGET', KEYS[3], oldest) or '0'))
  redis.call('HDEL', KEYS[3], oldest)
  redis.call('DEL', oldest)
end
return total
"""


class SharedTurns:
    blocking = True  # every call is a round trip: the service makes it off the event loop

    def __init__(self, url: str, namespace: str, *, max_turns: int = MAX_TURNS, max_bytes: int = MAX_BYTES,
                 keep_s: float = KEEP_S, timeout_s: float = 0.5) -> None:  # fmt: skip
        self.namespace = namespace
        self.max_turns, self.max_bytes, self.keep_s = max_turns, max_bytes, keep_s
        self._redis = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._remember = self._redis.register_script(_REMEMBER)
        self._failing = False

    def remember(self, account: str, message_id: str, turn: PromptFingerprint) -> None:
        keys = [self._key(account, message_id), f"{self.namespace}:turns", f"{self.namespace}:turns:sizes"]
        now_ms = int(time.time() * 1000)  # orders the index only: turns expire by Redis's own clock
        args: list[str | int] = [_encode(turn), now_ms, int(self.keep_s * 1000), self.max_turns, self.max_bytes]
        self._quietly(lambda: self._remember(keys=keys, args=args))

    def recall(self, account: str, message_id: str | None) -> PromptFingerprint | None:
        if message_id is None:
            return None
        raw = self._quietly(lambda: self._redis.get(self._key(account, message_id)))
        return _decode(raw) if isinstance(raw, bytes) else None

    def close(self) -> None:
        self._redis.close()

    def _key(self, account: str, message_id: str) -> str:
        return f"{self.namespace}:turn:{account}:{message_id}"

    def _quietly(self, call: Any) -> Any:
        try:
            result = call()
        except redis.exceptions.RedisError as error:
            if not self._failing:
                log.warning("cache diagnosis: Redis unreachable (%s); turns are not shared until it is back", error)
            self._failing = True
            return None
        if self._failing:
            log.warning("cache diagnosis: Redis reachable again")
        self._failing = False
        return result


def _encode(turn: PromptFingerprint) -> str:
    return json.dumps({"model": turn.model, "tools": turn.tools.hex(), "system": turn.system.hex(),
                       "messages": turn.messages.hex(), "salt": [list(p) for p in turn.salt], "region": turn.region,
                       "cached": turn.cached_tokens}, separators=(",", ":"))  # fmt: skip


def _decode(raw: bytes) -> PromptFingerprint | None:
    """A value that is not a turn (another writer, a damaged key) is no turn: not found."""
    try:
        row = json.loads(raw)
        salt = tuple((str(name), str(value)) for name, value in row["salt"])
        tools, system, messages = (bytes.fromhex(row[part]) for part in ("tools", "system", "messages"))
        model, region, cached = str(row["model"]), str(row["region"]), int(row["cached"])
        return PromptFingerprint(model, tools, system, messages, salt, region, cached)
    except (ValueError, KeyError, TypeError):
        return None
