"""Bedrock response bodies built from a service Result."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from cachepoint.accounting.usage import anthropic_usage, converse_usage, nova_usage
from cachepoint.cache.plan import CachePlan
from cachepoint.models.spec import ModelSpec
from cachepoint.service import Result
from cachepoint.types import Ttl


def converse_body(result: Result) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": result.text}]}},
        "stopReason": result.stop_reason.value,
        "usage": converse_usage(result.usage),
        "metrics": {"latencyMs": result.latency_ms},
    } | service_tier(result)


def nova_body(result: Result) -> dict[str, Any]:
    """Nova's native InvokeModel response: Converse's message and stop reason, the usage in Nova's spelling."""
    return {
        "output": {"message": {"content": [{"text": result.text}], "role": "assistant"}},
        "stopReason": result.stop_reason.value,
        "usage": nova_usage(result.usage),
    }


def service_tier(result: Result) -> dict[str, Any]:
    """The request's `serviceTier`, echoed (Converse's body and ConverseStream's metadata event)."""
    return {"serviceTier": {"type": result.service_tier}} if result.service_tier else {}


def anthropic_message_body(
    result: Result,
    spec: ModelSpec,
    *,
    message_id: str | None = None,
    with_cache_creation: bool | None = None,
    api_usage: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`with_cache_creation` None: as Bedrock does (only for 1h-capable models); /v1/messages always shows it."""
    creation = offers_one_hour(spec) if with_cache_creation is None else with_cache_creation
    return {
        "id": message_id or new_message_id(),
        "type": "message",
        "role": "assistant",
        "model": spec.response_model_name,
        "content": [{"type": "text", "text": result.text}] if result.text else [],
        "stop_reason": result.stop_reason.value,
        "stop_sequence": result.stop_sequence,
        "usage": anthropic_usage(result.usage, with_cache_creation=creation, api=api_usage),
    }


def offers_one_hour(spec: ModelSpec) -> bool:
    """Bedrock shows `cache_creation` only for models whose TTL options include 1h."""
    return spec.caching is not None and Ttl.ONE_HOUR in spec.caching.ttls


def plan_headers(plan: CachePlan, inference_region: str, replica: str = "", lifecycle: str = "") -> dict[str, str]:
    """`x-cachepoint-cache`: one `outcome:T:ttl[:cause][:tier]` per checkpoint, so silent no-caching is never
    silent; `x-cachepoint-replica`: the engine replica that served the call; `x-cachepoint-lifecycle`: the
    model is legacy or (policy `report`) past its end of life. Known once the plan is made: streams send them too."""
    headers = {"X-Amzn-Bedrock-Inference-Region": inference_region}
    if replica:
        headers["x-cachepoint-replica"] = replica
    if lifecycle:
        headers["x-cachepoint-lifecycle"] = lifecycle
    if plan.reports:
        headers["x-cachepoint-cache"] = ",".join(r.compact() for r in plan.reports)
    return headers


def cache_header(result: Result) -> dict[str, str]:
    """The plan's headers, and `x-cachepoint-prefill`: what the engine computed, restored and saved."""
    headers = plan_headers(result.plan, str(result.inference_region), result.replica, result.lifecycle)
    if result.prefill is not None:
        p = result.prefill
        headers["x-cachepoint-prefill"] = (
            f"evaluated={p.num_evaluated_tokens};prefill_ms={p.prefill_s * 1000:.1f};"
            f"restore_ms={p.restore_s * 1000:.1f};snapshot_ms={p.snapshot_s * 1000:.1f}"
        ) + ("" if p.engine_cached_tokens is None else f";engine_cached={p.engine_cached_tokens}")
        if result.physical:
            headers["x-cachepoint-prefill"] += f";physical={result.physical}"
    return headers


def new_message_id(prefix: str = "msg_bdrk_") -> str:
    return prefix + uuid.uuid4().hex[:24]
