"""Turning a request's outcome into one telemetry Invocation: begun by the route once the body is read,
finished on success (with the output body) or on failure (from the error boundary)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from starlette.requests import Request

from cachepoint.accounting.pricing import cost_usd, uncached_cost_usd
from cachepoint.api.common import call_context, services_of
from cachepoint.errors import CachepointError, ValidationError
from cachepoint.models.ids import RefKind, parse_model_identifier
from cachepoint.models.spec import ModelSpec
from cachepoint.service import Result
from cachepoint.telemetry.records import Invocation


@dataclass(frozen=True)
class Pending:
    operation: str
    model_id: str
    input_body: Any
    started_s: float


def begin(request: Request, operation: str, model_id: str, input_body: Any) -> None:
    request.state.pending = Pending(operation, model_id, input_body, services_of(request).clock.now_s())


def succeed(request: Request, result: Result, output_body: Any) -> None:
    pending = _take(request)
    if pending is None:
        return
    cost, uncached = _costs(request, pending.model_id, result)
    _record(
        request,
        pending,
        usage=result.usage,
        output_body=output_body,
        inference_region=result.inference_region,
        reports=result.plan.reports,
        cost_usd=cost,
        uncached_cost_usd=uncached,
        latency_ms=result.latency_ms,
        first_token_ms=result.first_token_ms,
        tags=_tags(request, pending.model_id),
    )


def fail(request: Request, error: CachepointError) -> None:
    pending = _take(request)
    if pending is not None:
        _record(request, pending, error_code=error.bedrock_code)


def _take(request: Request) -> Pending | None:
    """Each request is recorded once: the first outcome wins."""
    pending: Pending | None = getattr(request.state, "pending", None)
    request.state.pending = None
    return pending


def _record(request: Request, pending: Pending, **outcome: Any) -> None:
    ctx = call_context(request)
    invocation = Invocation(
        timestamp_s=pending.started_s,
        account_id=ctx.account_id,
        access_key=ctx.access_key,
        region=ctx.region,
        request_id=ctx.request_id,
        operation=pending.operation,
        model_id=pending.model_id,
        input_body=pending.input_body,
        request_metadata=_metadata(pending.input_body),
        **outcome,
    )
    services_of(request).telemetry.record(invocation)


def _costs(request: Request, model_id: str, result: Result) -> tuple[Decimal | None, Decimal | None]:
    prices = result.spec.prices
    if prices is None:
        return None, None
    factor = price_factor(request, model_id, result.spec)
    return cost_usd(result.usage, prices, factor), uncached_cost_usd(result.usage, prices, factor)


def price_factor(request: Request, model_id: str, spec: ModelSpec) -> Decimal:
    """`global.` profiles (and application profiles copied from one) get the global price."""
    try:
        ref = parse_model_identifier(model_id)
    except ValidationError:
        return Decimal(1)
    if ref.kind is RefKind.APPLICATION_PROFILE:
        profile = services_of(request).inference.profiles.get(call_context(request).account_id, ref.model_id)
        ref = parse_model_identifier(profile.copy_from) if profile else ref
    return spec.global_price_factor if ref.geo == "global" else Decimal(1)


def _tags(request: Request, model_id: str) -> dict[str, str]:
    try:
        ref = parse_model_identifier(model_id)
    except ValidationError:
        return {}
    if ref.kind is not RefKind.APPLICATION_PROFILE:
        return {}
    return services_of(request).inference.profiles.tags(call_context(request).account_id, model_id)


def _metadata(body: Any) -> dict[str, str] | None:
    metadata = body.get("requestMetadata") if isinstance(body, dict) else None
    return metadata if isinstance(metadata, dict) else None
