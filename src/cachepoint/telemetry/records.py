"""Bedrock's ModelInvocationLog record (schemaVersion 1.0), built from one finished invocation.

cachepoint adds one extension member, `cachepoint`, with the per-checkpoint cache explanation, the
cost and savings and the application-profile tags; consumers of the schema ignore unknown members.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cachepoint.accounting.usage import Usage
from cachepoint.cache.plan import CheckpointReport

LARGE_BODY_BYTES = 100 * 1024  # bodies above this go to separate objects, as Bedrock's S3 delivery does


@dataclass(frozen=True)
class Invocation:
    """Everything a log record says about one call, success or failure."""

    timestamp_s: float
    account_id: str
    principal: str
    region: str
    request_id: str
    operation: str
    model_id: str
    input_body: Any
    usage: Usage | None = None
    output_body: Any = None
    inference_region: str | None = None
    error_code: str | None = None
    reports: tuple[CheckpointReport, ...] = ()
    cost_usd: Decimal | None = None
    uncached_cost_usd: Decimal | None = None
    latency_ms: int | None = None
    first_token_ms: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    request_metadata: dict[str, str] | None = None
    streaming: bool = False
    engine_cached_tokens: int | None = None  # what the engine physically reused (vs. Bedrock's accounting)
    physical: str | None = None  # where that reuse parted from Bedrock's accounting (see service.calls.Result)
    input_bytes: bytes | None = None  # the body as received: a large one is offloaded as is, never re-encoded
    resolved_model: bool = True  # False: the identifier named no model (kept out of metric labels)
    replica: str = ""  # the engine replica that served it
    prefix: str = ""  # short fingerprint of the deepest prefix read or written
    reuse: tuple[tuple[float, bool], ...] = ()  # idle seconds before a prefix came back, and whether it was read
    lost_usd: Decimal | None = None  # what the writes cost beyond reads, where the prefix had been cached before
    lifecycle: str = ""  # the model's lifecycle notice (legacy, or served past its end of life)
    service_tier: str = ""  # the tier billed, when one was asked for


@dataclass(frozen=True)
class LogRecord:
    """The record, plus bodies too large to inline (key suffix → JSON bytes) for the sink to store."""

    record: dict[str, Any]
    offloaded: dict[str, bytes]


def build_record(inv: Invocation, *, text_delivery: bool, data_prefix: str) -> LogRecord:
    offloaded: dict[str, bytes] = {}
    record: dict[str, Any] = {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(inv.timestamp_s)),
        "accountId": inv.account_id,
        "identity": {"arn": f"arn:aws:iam::{inv.account_id}:user/{inv.principal}"},
        "region": inv.region,
        "requestId": inv.request_id,
        "operation": inv.operation,
        "modelId": inv.model_id,
        "input": _input(inv, text_delivery, data_prefix, offloaded),
    }
    if inv.error_code is None and inv.usage is not None:
        record["output"] = _output(inv, text_delivery, data_prefix, offloaded)
    if inv.error_code is not None:
        record["errorCode"] = inv.error_code
    if inv.inference_region is not None and inv.inference_region != inv.region:
        record["inferenceRegion"] = inv.inference_region
    if inv.request_metadata:
        record["requestMetadata"] = inv.request_metadata
    record["cachepoint"] = _extension(inv)
    return LogRecord(record, offloaded)


def _input(inv: Invocation, text: bool, prefix: str, offloaded: dict[str, bytes]) -> dict[str, Any]:
    section: dict[str, Any] = {"inputContentType": "application/json"}
    if text and inv.input_bytes is not None and len(inv.input_bytes) > LARGE_BODY_BYTES:
        # re-encoding a 20 MB body would hold the interpreter for a tenth of a second; it is JSON already
        key = f"data/{inv.request_id}_input.json.gz"
        offloaded[key] = inv.input_bytes
        section["inputBodyS3Path"] = f"{prefix}{key}"
    elif text and inv.input_body is not None:
        section |= _body("input", inv.input_body, inv.request_id, prefix, offloaded)
    usage = inv.usage
    section["inputTokenCount"] = usage.input_tokens if usage else 0
    if usage is not None and usage.had_checkpoint:
        section["cacheReadInputTokenCount"] = usage.cache_read_tokens
        section["cacheWriteInputTokenCount"] = usage.cache_write_tokens
    return section


def _output(inv: Invocation, text: bool, prefix: str, offloaded: dict[str, bytes]) -> dict[str, Any]:
    section: dict[str, Any] = {"outputContentType": "application/json"}
    if text:
        section |= _body("output", inv.output_body, inv.request_id, prefix, offloaded)
    section["outputTokenCount"] = inv.usage.output_tokens if inv.usage else 0
    return section


def _body(kind: str, body: Any, request_id: str, prefix: str, offloaded: dict[str, bytes]) -> dict[str, Any]:
    encoded = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    if len(encoded) <= LARGE_BODY_BYTES:
        return {f"{kind}BodyJson": body}
    key = f"data/{request_id}_{kind}.json.gz"
    offloaded[key] = encoded
    return {f"{kind}BodyS3Path": f"{prefix}{key}"}


def _extension(inv: Invocation) -> dict[str, Any]:
    ext: dict[str, Any] = {"checkpoints": [r.compact() for r in inv.reports]}
    if inv.cost_usd is not None:
        ext["costUsd"] = str(inv.cost_usd)
        ext["uncachedCostUsd"] = str(inv.uncached_cost_usd)
    if inv.usage is not None:
        ext["cacheWrite5mInputTokenCount"] = inv.usage.cache_write_5m_tokens
        ext["cacheWrite1hInputTokenCount"] = inv.usage.cache_write_1h_tokens
    if inv.latency_ms is not None:
        ext["latencyMs"] = inv.latency_ms
    if inv.first_token_ms is not None:
        ext["timeToFirstTokenMs"] = inv.first_token_ms
    if inv.engine_cached_tokens is not None:
        ext["engineCachedTokens"] = inv.engine_cached_tokens
    if inv.physical is not None:
        ext["physical"] = inv.physical
    if inv.lifecycle:
        ext["lifecycle"] = inv.lifecycle
    if inv.service_tier:
        ext["serviceTier"] = inv.service_tier
    if inv.tags:
        ext["tags"] = inv.tags
    return ext
