"""The messages part's salt: what changes Anthropic's cache for messages without changing their tokens.

Anthropic documents that a change of `tool_choice`, of the thinking parameters, or of whether images are
present invalidates the messages part of the cache but not tools or system (tools, being tokens first in the
prefix, already invalidate everything). The salt enters the key of the first message block, so such a change
misses from there on. To say which change it was, the salt last seen for the same prefix up to the first
message is remembered (bounded); a miss that would otherwise read `new` or `prefix-changed` names it.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace

from cachepoint.cache.keys import BlockHash, chain_keys
from cachepoint.cache.plan import CheckpointReport, MissCause, Outcome
from cachepoint.cache.planner import Decision
from cachepoint.prompt.render import Boundary, RenderedPrompt
from cachepoint.types import Section

Salt = tuple[tuple[str, str], ...]
CAUSES = {
    "tool_choice": MissCause.TOOL_CHOICE_CHANGED,
    "thinking": MissCause.THINKING_CHANGED,
    "images": MissCause.IMAGES_CHANGED,
}
REMEMBERED = 10_000


def salt_bytes(salt: Salt) -> bytes:
    """Empty for the usual request (no tool_choice, thinking or images): keys stay what they were."""
    return json.dumps(salt).encode() if any(value for _, value in salt) else b""


def first_message(boundaries: Sequence[Boundary]) -> int | None:
    return next((b.block_index for b in boundaries if b.section is Section.MESSAGES), None)


class SaltMemory:
    def __init__(self, limit: int = REMEMBERED) -> None:
        self._seen: OrderedDict[BlockHash, Salt] = OrderedDict()
        self._limit = limit

    def explain(self, anchor: BlockHash, salt: Salt, decision: Decision, first_block: int) -> Decision:
        """Remember `salt` for `anchor` (the unsalted key of the first message block); if it changed, the
        message checkpoints' otherwise unexplained misses say what changed."""
        previous = self._seen.pop(anchor, None)
        self._seen[anchor] = salt
        if len(self._seen) > self._limit:
            self._seen.popitem(last=False)
        changed = next((n for (n, a), (_, b) in zip(previous or salt, salt, strict=False) if a != b), "")
        cause = CAUSES.get(changed)
        if cause is None:
            return decision
        reports = tuple(_named(r, cause, first_block) for r in decision.reports)
        return replace(decision, reports=reports)


def _named(report: CheckpointReport, cause: MissCause, first_block: int) -> CheckpointReport:
    unexplained = report.outcome is Outcome.WRITTEN and report.cause in (MissCause.NEW, MissCause.PREFIX_CHANGED)
    return replace(report, cause=cause) if unexplained and report.block_index >= first_block else report


def salted_keys(
    seed: BlockHash, rendered: RenderedPrompt
) -> tuple[tuple[BlockHash, ...], BlockHash | None, int | None]:
    """The request's keys (salted from the first message block), that block's unsalted key, and its index."""
    ends = [b.end_tokens for b in rendered.boundaries]
    first = first_message(rendered.boundaries)
    salt = salt_bytes(rendered.message_salt)
    keys = chain_keys(seed, rendered.tokens, ends, first, salt)
    if first is None:
        return keys, None, None
    anchor = chain_keys(seed, rendered.tokens, ends[: first + 1])[-1] if salt else keys[first]
    return keys, anchor, first
