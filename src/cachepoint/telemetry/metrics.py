"""CloudWatch-named metrics on a Prometheus registry (injected, never the global one).

Counters get Prometheus' `_total` suffix (`Invocations_total`); latencies are histograms in ms.
Cache gauges are read from the cache at scrape time, so they are never stale.

Label values are bounded: an identifier that resolved to no model is `invalid`, Regions are known
ones (unknown Regions are refused before anything is recorded), and past `max_label_values`
distinct accounts or model IDs (dev mode makes an account per key) further ones count as `other`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from cachepoint.cache.plan import CacheStats
from cachepoint.telemetry.records import Invocation

LABELS = ["ModelId", "region", "inference_region", "account"]
MS_BUCKETS = (50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000)
CLIENT_ERRORS = {"ValidationException", "AccessDeniedException", "ResourceNotFoundException", "ConflictException",
                 "ClientDisconnected"}  # fmt: skip
THROTTLES = {"ThrottlingException", "ServiceQuotaExceededException"}
INVALID_MODEL = "invalid"
OTHER = "other"
MAX_LABEL_VALUES = 1000


class BoundedLabels:
    """The first `limit` distinct values keep their names; later ones become `other`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self.limit:
            return OTHER
        self._seen.add(value)
        return value


class Metrics:
    def __init__(
        self,
        registry: CollectorRegistry,
        cache_stats: Callable[[], CacheStats],
        max_label_values: int = MAX_LABEL_VALUES,
    ) -> None:
        self._accounts = BoundedLabels(max_label_values)
        self._models = BoundedLabels(max_label_values)

        def counter(name: str, doc: str, labels: list[str] = LABELS) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        self.invocations = counter("Invocations", "Requests accepted (not throttled)")
        self.client_errors = counter("InvocationClientErrors", "4xx outcomes, excluding throttles")
        self.server_errors = counter("InvocationServerErrors", "5xx outcomes")
        self.throttles = counter("InvocationThrottles", "Throttled requests")
        self.input_tokens = counter("InputTokenCount", "Uncached input tokens")
        self.output_tokens = counter("OutputTokenCount", "Output tokens")
        self.cache_read = counter("CacheReadInputTokenCount", "Cache-read input tokens")
        self.cache_write = counter("CacheWriteInputTokenCount", "Cache-write input tokens")
        self.writes_by_ttl = counter("cachepoint_cache_writes_tokens", "Cache-write tokens by TTL", [*LABELS, "ttl"])
        self.queries = counter("cachepoint_prefix_cache_queries_tokens", "Checkpointed prompt tokens looked up")
        self.hits = counter("cachepoint_prefix_cache_hits_tokens", "Prompt tokens read from cache")
        self.cost = counter("cachepoint_estimated_cost_usd", "Estimated cost at catalog prices")
        # savings = uncached - cost; it can be negative (a write costs 1.25x), so it is not a counter itself
        self.uncached_cost = counter(
            "cachepoint_estimated_uncached_cost_usd", "Cost the same requests would have had uncached"
        )
        self.latency = Histogram(
            "InvocationLatency", "Request to last token (ms)", LABELS, registry=registry, buckets=MS_BUCKETS
        )
        self.ttft = Histogram(
            "TimeToFirstToken", "Request to first content token (ms)", LABELS, registry=registry, buckets=MS_BUCKETS
        )
        registry.register(_CacheCollector(cache_stats))

    def labels(self, inv: Invocation) -> tuple[str, str, str, str]:
        model = self._models(inv.model_id) if inv.resolved_model else INVALID_MODEL
        return model, inv.region, inv.inference_region or inv.region, self._accounts(inv.account_id)

    def count_throttle(self, region: str, account_id: str) -> None:
        self.throttles.labels("", region, region, self._accounts(account_id)).inc()

    def observe(self, inv: Invocation) -> None:
        labels = self.labels(inv)
        if inv.error_code is not None:
            self._observe_error(inv.error_code, labels)
            return
        self.invocations.labels(*labels).inc()
        if inv.usage is None:
            return
        u = inv.usage
        self.input_tokens.labels(*labels).inc(u.input_tokens)
        self.output_tokens.labels(*labels).inc(u.output_tokens)
        self.cache_read.labels(*labels).inc(u.cache_read_tokens)
        self.cache_write.labels(*labels).inc(u.cache_write_tokens)
        self.writes_by_ttl.labels(*labels, "5m").inc(u.cache_write_5m_tokens)
        self.writes_by_ttl.labels(*labels, "1h").inc(u.cache_write_1h_tokens)
        if u.had_checkpoint:
            self.queries.labels(*labels).inc(u.cache_read_tokens + u.cache_write_tokens)
            self.hits.labels(*labels).inc(u.cache_read_tokens)
        if inv.cost_usd is not None and inv.uncached_cost_usd is not None:
            self.cost.labels(*labels).inc(float(inv.cost_usd))
            self.uncached_cost.labels(*labels).inc(float(inv.uncached_cost_usd))
        if inv.latency_ms is not None:
            self.latency.labels(*labels).observe(inv.latency_ms)
        if inv.first_token_ms is not None and inv.streaming:
            self.ttft.labels(*labels).observe(inv.first_token_ms)

    def _observe_error(self, code: str, labels: tuple[str, str, str, str]) -> None:
        if code in THROTTLES:
            self.throttles.labels(*labels).inc()
            return
        self.invocations.labels(*labels).inc()  # accepted, then failed
        (self.client_errors if code in CLIENT_ERRORS else self.server_errors).labels(*labels).inc()


class _CacheCollector(Collector):
    def __init__(self, stats: Callable[[], CacheStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        stats = self._stats()
        entries = GaugeMetricFamily("cachepoint_cache_entries", "Live cache entries", labels=["region"])
        size = GaugeMetricFamily("cachepoint_cache_bytes", "Bytes of live KV snapshots", labels=["region"])
        for region, count in sorted(stats.entries_by_region.items()):
            entries.add_metric([region], count)
        for region, count in sorted(stats.bytes_by_region.items()):
            size.add_metric([region], count)
        budget = GaugeMetricFamily(
            "cachepoint_cache_budget_bytes", "Byte budget of the KV snapshots (the disk tier's when on)",
            value=stats.budget_bytes,
        )  # fmt: skip
        removals = CounterMetricFamily("cachepoint_cache_evictions", "Cache entries removed", labels=["reason"])
        for reason, count in sorted(stats.removals.items()):
            removals.add_metric([reason], count)
        yield from (entries, size, budget, removals, *_tier_metrics(stats.tiers))


TIER_GAUGES = {"entries": "Live cache entries whose snapshot is in the tier (RAM first)",
               "bytes": "Bytes of snapshots held in the tier", "budget_bytes": "Byte budget of the tier"}  # fmt: skip
TIER_COUNTERS = {"promotions": "Snapshots read from disk back into RAM",
                 "demotions": "Snapshots whose RAM copy left for lack of room (the disk copy stays)",
                 "load_failures": "Snapshots that could not be read (missing, truncated, corrupt)",
                 "writes": "Snapshots written to the tier", "write_failures": "Snapshot writes that failed",
                 "writes_skipped": "Snapshots not written because the write queue was full",
                 "lost": "Snapshots dropped from RAM with no disk copy"}  # fmt: skip


def _tier_metrics(tiers: dict[str, dict[str, int]]) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """`cachepoint_cache_tier_*{tier="ram"|"disk"}`: each figure only on the tiers that have it."""
    families: tuple[tuple[type[GaugeMetricFamily] | type[CounterMetricFamily], dict[str, str]], ...] = (
        (GaugeMetricFamily, TIER_GAUGES),
        (CounterMetricFamily, TIER_COUNTERS),
    )
    for family, texts in families:
        for name, text in texts.items():
            metric = family(f"cachepoint_cache_tier_{name}", text, labels=["tier"])
            for tier, figures in sorted(tiers.items()):
                if name in figures:
                    metric.add_metric([tier], figures[name])
            yield metric
