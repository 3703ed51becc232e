"""The Message's `diagnostics` member (Anthropic's cache diagnosis): absent unless asked for; null when there is
nothing to explain; else `{"cache_miss_reason": {"type": …, "cache_missed_input_tokens": N}}`. Streams carry it
on `message_start`."""

from __future__ import annotations

from typing import Any

from cachepoint.cache.diagnosis import Diagnosis


def diagnostics_member(diagnosis: Diagnosis | None) -> dict[str, Any]:
    if diagnosis is None:
        return {}
    if diagnosis.reason is None:
        return {"diagnostics": None}
    reason: dict[str, Any] = {"type": diagnosis.reason.value}
    if diagnosis.reason.counts_tokens:
        reason["cache_missed_input_tokens"] = diagnosis.missed_tokens
    return {"diagnostics": {"cache_miss_reason": reason}}
