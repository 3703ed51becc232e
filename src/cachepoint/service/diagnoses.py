"""The fingerprints of the turns that asked for a cache diagnosis, by (account, message id), so the next turn
can be compared with them. Bounded in count and age: an unknown or forgotten id is `previous_message_not_found`,
as on Anthropic's API. One gateway's memory: a turn answered by another gateway of a cluster is not found."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Protocol

from cachepoint.cache.diagnosis import Diagnosis, diagnose
from cachepoint.cache.plan import CachePlan, Outcome
from cachepoint.clock import Clock
from cachepoint.prompt.fingerprint import PromptFingerprint, fingerprint
from cachepoint.service.calls import PreparedCall

MAX_TURNS = 50_000
MAX_BYTES = 32 * 2**20  # 12 bytes a message: a 10,000-message turn costs 120 KB; the oldest turns go first
KEEP_S = 3600.0  # a conversation idle for longer has nothing cached to diagnose (the longest TTL is 1 h)


class TurnMemory(Protocol):
    """Where the turns are kept: this gateway's memory, or the cluster's Redis (`service/shared_turns.py`)."""

    blocking: bool

    def remember(self, account: str, message_id: str, turn: PromptFingerprint) -> None: ...

    def recall(self, account: str, message_id: str | None) -> PromptFingerprint | None: ...

    def close(self) -> None: ...


class DiagnosisMemory:
    blocking = False

    def __init__(
        self, clock: Clock, max_turns: int = MAX_TURNS, keep_s: float = KEEP_S, max_bytes: int = MAX_BYTES
    ) -> None:
        self.clock = clock
        self.max_turns = max_turns
        self.max_bytes = max_bytes
        self.keep_s = keep_s
        self._turns: OrderedDict[tuple[str, str], tuple[float, PromptFingerprint]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def remember(self, account: str, message_id: str, turn: PromptFingerprint) -> None:
        key = (account, message_id)
        with self._lock:
            if (old := self._turns.pop(key, None)) is not None:
                self._bytes -= old[1].num_bytes
            self._turns[key] = (self.clock.now_s(), turn)
            self._bytes += turn.num_bytes
            while len(self._turns) > self.max_turns or self._bytes > self.max_bytes:
                self._bytes -= self._turns.popitem(last=False)[1][1].num_bytes

    @property
    def num_bytes(self) -> int:
        return self._bytes

    def close(self) -> None:
        """Nothing to release: the turns are this process's memory."""

    def recall(self, account: str, message_id: str | None) -> PromptFingerprint | None:
        """Another account's message id is not found: ids never cross accounts."""
        if message_id is None:
            return None
        with self._lock:
            found = self._turns.get((account, message_id))
            if found is None or self.clock.now_s() - found[0] > self.keep_s:
                return None
            return found[1]

    def __len__(self) -> int:
        return len(self._turns)


def diagnosis_of(memory: TurnMemory, call: PreparedCall, plan: CachePlan, region: str) -> Diagnosis | None:
    """For a call that asked (`diagnostics` in its body): remember this turn under its response id, and compare
    it with the turn it names. A first turn (`previous_message_id` null) has nothing to explain."""
    if not call.decoded.diagnose:
        return None
    deepest = max((r.num_tokens for r in plan.reports if r.outcome in (Outcome.HIT, Outcome.WRITTEN)), default=0)
    turn = fingerprint(call.spec.model_id, call.decoded.prompt, region, deepest)
    named = call.decoded.previous_message_id
    previous = memory.recall(call.ctx.account_id, named)
    if call.request.response_id:
        memory.remember(call.ctx.account_id, call.request.response_id, turn)
    return Diagnosis() if named is None else diagnose(previous, turn, plan)
