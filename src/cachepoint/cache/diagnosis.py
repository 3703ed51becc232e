"""Why a turn did not read what the previous turn cached, in the shape of Anthropic's cache diagnosis
(`diagnostics.cache_miss_reason`), filled from cachepoint's own explanation. Pure.

Anthropic compares request structure only: `model_changed`, `tools_changed`, `system_changed`,
`messages_changed`, `previous_message_not_found`, or `unavailable`. The cache knows more, and says it with extra
values when the structure matched: `ttl_expired`, `evicted`, `region_changed`, `replica_lost`, `below_minimum`,
`marker_dropped`, `restore_failed`, and (Anthropic folds these into `unavailable`) `tool_choice_changed`,
`thinking_changed`, `images_changed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from cachepoint.cache.plan import CachePlan, CheckpointReport, MissCause, Outcome
from cachepoint.prompt.fingerprint import PromptFingerprint


class MissReason(StrEnum):
    MODEL_CHANGED = "model_changed"
    TOOLS_CHANGED = "tools_changed"
    SYSTEM_CHANGED = "system_changed"
    MESSAGES_CHANGED = "messages_changed"
    PREVIOUS_MESSAGE_NOT_FOUND = "previous_message_not_found"
    UNAVAILABLE = "unavailable"
    # cachepoint's own, past what structure can tell
    TOOL_CHOICE_CHANGED = "tool_choice_changed"
    THINKING_CHANGED = "thinking_changed"
    IMAGES_CHANGED = "images_changed"
    TTL_EXPIRED = "ttl_expired"
    EVICTED = "evicted"
    REGION_CHANGED = "region_changed"
    REPLICA_LOST = "replica_lost"
    BELOW_MINIMUM = "below_minimum"
    MARKER_DROPPED = "marker_dropped"
    RESTORE_FAILED = "restore_failed"

    @property
    def counts_tokens(self) -> bool:
        """Anthropic's two reasons without a comparison carry no `cache_missed_input_tokens`."""
        return self not in (MissReason.PREVIOUS_MESSAGE_NOT_FOUND, MissReason.UNAVAILABLE)


@dataclass(frozen=True)
class Diagnosis:
    """`reason` None: nothing to explain (first turn, or the previous turn's prefix was read)."""

    reason: MissReason | None = None
    missed_tokens: int = 0  # what would have been read had the prefix matched


SALT_REASONS: Mapping[str, MissReason] = {
    "tool_choice": MissReason.TOOL_CHOICE_CHANGED,
    "thinking": MissReason.THINKING_CHANGED,
    "images": MissReason.IMAGES_CHANGED,
}
CAUSE_REASONS: Mapping[MissCause, MissReason] = {
    MissCause.EXPIRED: MissReason.TTL_EXPIRED,
    MissCause.EVICTED: MissReason.EVICTED,
    MissCause.REGION_SWITCH: MissReason.REGION_CHANGED,
    MissCause.REPLICA_LOST: MissReason.REPLICA_LOST,
    MissCause.SNAPSHOT_UNREADABLE: MissReason.RESTORE_FAILED,
    MissCause.TOKEN_MISMATCH: MissReason.RESTORE_FAILED,
    MissCause.TOOL_CHOICE_CHANGED: MissReason.TOOL_CHOICE_CHANGED,
    MissCause.THINKING_CHANGED: MissReason.THINKING_CHANGED,
    MissCause.IMAGES_CHANGED: MissReason.IMAGES_CHANGED,
}
UNREADABLE = (Outcome.BELOW_MINIMUM, Outcome.OVER_CEILING, Outcome.NOT_ALLOWED)


def diagnose(previous: PromptFingerprint | None, current: PromptFingerprint, plan: CachePlan) -> Diagnosis:
    """Nothing to explain when this turn read all the previous turn cached (a change after that point costs no
    read); else the earliest structural divergence, and when the structure matched, why the cache did not give
    it back."""
    if previous is None:
        return Diagnosis(MissReason.PREVIOUS_MESSAGE_NOT_FOUND)
    missed = max(previous.cached_tokens - plan.read_tokens, 0)
    if missed == 0:
        return Diagnosis()
    structural = _structural(previous, current)
    return Diagnosis(structural or _from_cache(previous, current, plan.reports), missed)


def _structural(previous: PromptFingerprint, current: PromptFingerprint) -> MissReason | None:
    if previous.model != current.model:
        return MissReason.MODEL_CHANGED
    if previous.tools != current.tools:
        return MissReason.TOOLS_CHANGED
    if previous.system != current.system:
        return MissReason.SYSTEM_CHANGED
    if not current.extends(previous):
        return MissReason.MESSAGES_CHANGED
    before, now = dict(previous.salt), dict(current.salt)
    return next((reason for name, reason in SALT_REASONS.items() if before.get(name) != now.get(name)), None)


def _from_cache(
    previous: PromptFingerprint, current: PromptFingerprint, reports: tuple[CheckpointReport, ...]
) -> MissReason:
    reaching = [r for r in reports if r.num_tokens >= previous.cached_tokens]
    if not reaching:  # no checkpoint at or past the cached prefix: nothing could read it
        unreadable = bool(reports) and all(r.outcome in UNREADABLE for r in reports)
        return MissReason.BELOW_MINIMUM if unreadable else MissReason.MARKER_DROPPED
    causes = [r.cause for r in reports if r.cause is not None]
    mapped = next((CAUSE_REASONS[c] for c in causes if c in CAUSE_REASONS), None)
    if mapped is not None:
        return mapped
    if previous.region != current.region:
        return MissReason.REGION_CHANGED
    return MissReason.UNAVAILABLE  # e.g. beyond the lookback window, or the directory was away
