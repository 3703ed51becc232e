"""OpenTelemetry export (`[telemetry] otlp_endpoint`): one span per invocation and the matching metrics,
over OTLP/HTTP, following the GenAI semantic conventions.

Span `chat {model}` (kind SERVER, the call's own start and end): `gen_ai.operation.name`,
`gen_ai.provider.name` (`aws.bedrock`, or `anthropic` on /v1/messages), `gen_ai.request.model`,
`gen_ai.usage.input_tokens` (every prompt token: the conventions count cached ones in it),
`gen_ai.usage.output_tokens`, `gen_ai.usage.cache_read.input_tokens`,
`gen_ai.usage.cache_creation.input_tokens`, `error.type` on failures. cachepoint's own facts are in its
namespace: `cachepoint.region`, `cachepoint.inference_region`, `cachepoint.account_id`,
`cachepoint.checkpoints` (the `x-cachepoint-cache` strings), and a `cachepoint.checkpoint` event per
checkpoint with its outcome, tokens, TTL, miss cause and tier. Metrics: `gen_ai.client.token.usage`
(by `gen_ai.token.type`: input, output) and `gen_ai.client.operation.duration`.
The SDK batches and sends from its own threads: a call never waits on the collector.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from cachepoint.telemetry.records import Invocation

ANTHROPIC_OPERATIONS = {"Messages"}
METRICS_INTERVAL_MS = 10_000


def span_attributes(inv: Invocation) -> dict[str, Any]:
    """The GenAI attributes of one invocation, and cachepoint's own (pure: unit-tested alone)."""
    provider = "anthropic" if inv.operation in ANTHROPIC_OPERATIONS else "aws.bedrock"
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": inv.model_id,
        "cachepoint.operation": inv.operation,
        "cachepoint.request_id": inv.request_id,
        "cachepoint.account_id": inv.account_id,
        "cachepoint.region": inv.region,
    }
    if inv.inference_region:
        attributes["cachepoint.inference_region"] = inv.inference_region
    if inv.usage is not None:
        u = inv.usage
        attributes |= {
            "gen_ai.usage.input_tokens": u.input_tokens + u.cache_read_tokens + u.cache_write_tokens,
            "gen_ai.usage.output_tokens": u.output_tokens,
            "gen_ai.usage.cache_read.input_tokens": u.cache_read_tokens,
            "gen_ai.usage.cache_creation.input_tokens": u.cache_write_tokens,
        }
    if inv.reports:
        attributes["cachepoint.checkpoints"] = [r.compact() for r in inv.reports]
    if inv.first_token_ms is not None:
        attributes["cachepoint.time_to_first_token_ms"] = inv.first_token_ms
    if inv.error_code is not None:
        attributes["error.type"] = inv.error_code
    return attributes


class OtlpExporter:
    def __init__(self, endpoint: str) -> None:
        base = endpoint.rstrip("/")
        resource = Resource.create({"service.name": "cachepoint"})
        self._traces = TracerProvider(resource=resource)
        self._traces.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
        self._tracer = self._traces.get_tracer("cachepoint")
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"{base}/v1/metrics"), export_interval_millis=METRICS_INTERVAL_MS
        )
        self._metrics = MeterProvider(resource=resource, metric_readers=[reader])
        meter = self._metrics.get_meter("cachepoint")
        self._tokens = meter.create_histogram("gen_ai.client.token.usage", unit="{token}",
                                              description="Tokens per invocation, by token type")  # fmt: skip
        self._duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s",
                                                description="Invocation duration")  # fmt: skip

    def export(self, inv: Invocation) -> None:
        attributes = span_attributes(inv)
        start_ns = int(inv.timestamp_s * 1e9)
        end_ns = start_ns + int((inv.latency_ms or 0) * 1e6)
        span = self._tracer.start_span(f"chat {inv.model_id}", kind=SpanKind.SERVER, start_time=start_ns,
                                       attributes=attributes)  # fmt: skip
        for report in inv.reports:
            span.add_event("cachepoint.checkpoint", _checkpoint_event(report.compact()), timestamp=start_ns)
        if inv.error_code is not None:
            span.set_status(Status(StatusCode.ERROR, inv.error_code))
        span.end(end_time=end_ns)
        common = {k: attributes[k] for k in ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model")}
        if inv.usage is not None:
            self._tokens.record(attributes["gen_ai.usage.input_tokens"], common | {"gen_ai.token.type": "input"})
            self._tokens.record(inv.usage.output_tokens, common | {"gen_ai.token.type": "output"})
        if inv.latency_ms is not None:
            failed = {"error.type": inv.error_code} if inv.error_code else {}
            self._duration.record(inv.latency_ms / 1000, common | failed)

    def flush(self) -> None:
        self._traces.force_flush()
        self._metrics.force_flush()

    def close(self) -> None:
        self._traces.shutdown()
        self._metrics.shutdown()


def _checkpoint_event(compact: str) -> dict[str, Any]:
    """`outcome:tokens:ttl[:cause][:tier]` as event attributes."""
    outcome, tokens, ttl, *rest = compact.split(":")
    event: dict[str, Any] = {"cachepoint.outcome": outcome, "cachepoint.tokens": int(tokens), "cachepoint.ttl": ttl}
    for value in rest:
        event["cachepoint.tier" if value in ("ram", "disk", "recomputed") else "cachepoint.cause"] = value
    return event
