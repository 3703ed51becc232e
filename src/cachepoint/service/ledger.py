"""Every call's outcome → one telemetry `Invocation`, built from typed values in one place.

The service calls it at exactly three points: a failure before the call could run, the end of a
call's stream (success), and a stream abandoned by its client. Recording never fails the call.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from cachepoint.accounting.pricing import cost_usd, uncached_cost_usd
from cachepoint.cache.plan import MissCause, Outcome
from cachepoint.errors import CachepointError, ClientDisconnectedError
from cachepoint.service.calls import Decoded, InvocationRequest, PreparedCall, Result, Target
from cachepoint.telemetry.records import Invocation
from cachepoint.telemetry.recorder import Telemetry


class Ledger:
    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    def failed(
        self,
        request: InvocationRequest,
        started_s: float,
        error: CachepointError,
        decoded: Decoded | None = None,
        target: Target | None = None,
    ) -> None:
        named = decoded.model if decoded and decoded.model else request.model_identifier
        fields = _invocation(
            request, started_s, target.identifier if target else named, decoded.body if decoded else None
        )
        fields |= {
            "error_code": error.bedrock_code,
            "resolved_model": target is not None,
            "streaming": request.operation.facts.streaming or bool(decoded and decoded.stream),
        }
        self.telemetry.record(Invocation(**fields))

    def succeeded(self, call: PreparedCall, result: Result) -> None:
        cost, uncached = _costs(call, result)
        fields = _invocation(call.request, call.started_s, call.target.identifier, call.decoded.body) | {
            "usage": result.usage,
            "output_body": call.request.log_output(result),
            "inference_region": result.inference_region,
            "reports": result.plan.reports,
            "cost_usd": cost,
            "uncached_cost_usd": uncached,
            "latency_ms": result.latency_ms,
            "first_token_ms": result.first_token_ms,
            "tags": dict(call.target.tags),
            "streaming": call.streaming,
            "engine_cached_tokens": result.prefill.engine_cached_tokens if result.prefill else None,
            "physical": result.physical,
            "replica": result.replica,
            "prefix": result.plan.prefix,
            "reuse": result.plan.reuse,
            "lost_usd": _lost(call, result),
            "lifecycle": call.target.lifecycle,
            "service_tier": call.target.service_tier,
        }
        self.telemetry.record(Invocation(**fields))

    def disconnected(self, call: PreparedCall) -> None:
        self.failed(call.request, call.started_s, ClientDisconnectedError(), call.decoded, call.target)


def _invocation(request: InvocationRequest, started_s: float, model_id: str, body: Any) -> dict[str, Any]:
    ctx = request.ctx
    return {
        "timestamp_s": started_s,
        "account_id": ctx.account_id,
        "principal": ctx.principal,
        "region": ctx.region,
        "request_id": ctx.request_id,
        "operation": request.operation.value,
        "model_id": model_id,
        "input_body": body,
        "input_bytes": request.body,
        "request_metadata": _metadata(body) or _header_metadata(request),
    }


def _costs(call: PreparedCall, result: Result) -> tuple[Decimal | None, Decimal | None]:
    prices = call.spec.prices
    if prices is None:
        return None, None
    factor = call.target.price_factor
    return cost_usd(result.usage, prices, factor), uncached_cost_usd(result.usage, prices, factor)


LOST_CAUSES = frozenset(c for c in MissCause if c is not MissCause.NEW)  # writes where a read was possible


def _lost(call: PreparedCall, result: Result) -> Decimal | None:
    """Money lost to misses: a write whose prefix had been cached (expired, evicted, changed, lost…), priced
    against the read it would have been."""
    prices, usage = call.spec.prices, result.usage
    if prices is None or not usage.cache_write_tokens:
        return None
    if not any(r.cause in LOST_CAUSES for r in result.plan.reports if r.outcome is Outcome.WRITTEN):
        return Decimal(0)
    as_read = replace(usage, cache_read_tokens=usage.cache_read_tokens + usage.cache_write_tokens,
                      cache_write_5m_tokens=0, cache_write_1h_tokens=0)  # fmt: skip
    factor = call.target.price_factor
    return cost_usd(usage, prices, factor) - cost_usd(as_read, prices, factor)


def _header_metadata(request: InvocationRequest) -> dict[str, str] | None:
    return dict(request.request_metadata) if request.request_metadata else None


def _metadata(body: Any) -> dict[str, str] | None:
    metadata = body.get("requestMetadata") if isinstance(body, dict) else None
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        return None
    return metadata
