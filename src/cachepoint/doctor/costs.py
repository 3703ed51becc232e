"""Cost and savings of logged requests at the catalog's prices, aggregated by any dimension."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cachepoint.accounting.pricing import cost_usd, uncached_cost_usd
from cachepoint.accounting.usage import Usage
from cachepoint.models.catalog import Catalog
from cachepoint.models.ids import RefKind, parse_model_identifier


@dataclass
class Totals:
    requests: int = 0
    read: int = 0
    write: int = 0
    uncached: int = 0
    output: int = 0
    cost: Decimal = Decimal(0)
    uncached_cost: Decimal = Decimal(0)
    unpriced: int = 0

    @property
    def savings(self) -> Decimal:
        return self.uncached_cost - self.cost

    @property
    def hit_rate(self) -> float:
        return self.read / (self.read + self.write) if self.read + self.write else 0.0


@dataclass
class CostReport:
    total: Totals = field(default_factory=Totals)
    by: dict[str, dict[str, Totals]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(Totals)))


def usage_of(record: dict[str, Any]) -> Usage:
    source, ext = record.get("input", {}), record.get("cachepoint", {})
    write = int(source.get("cacheWriteInputTokenCount", 0))
    write_1h = int(ext.get("cacheWrite1hInputTokenCount", 0))
    return Usage(
        input_tokens=int(source.get("inputTokenCount", 0)),
        output_tokens=int(record.get("output", {}).get("outputTokenCount", 0)),
        cache_read_tokens=int(source.get("cacheReadInputTokenCount", 0)),
        cache_write_5m_tokens=write - write_1h,
        cache_write_1h_tokens=write_1h,
    )


def price(record: dict[str, Any], catalog: Catalog) -> tuple[Decimal, Decimal] | None:
    """(cost, uncached cost) of one record, or None when the model has no configured price."""
    model_id = str(record.get("modelId", ""))
    try:
        ref = parse_model_identifier(model_id)
    except ValueError:
        return None
    spec = catalog.get(ref.model_id) if ref.kind is not RefKind.APPLICATION_PROFILE else None
    if spec is None or spec.prices is None:
        return None
    factor = spec.global_price_factor if ref.geo == "global" else Decimal(1)
    usage = usage_of(record)
    return cost_usd(usage, spec.prices, factor), uncached_cost_usd(usage, spec.prices, factor)


def cost_report(records: list[dict[str, Any]], catalog: Catalog) -> CostReport:
    report = CostReport()
    for record in records:
        if "errorCode" in record:
            continue
        dims = {
            "model": str(record.get("modelId", "")),
            "region": str(record.get("inferenceRegion") or record.get("region", "")),
            "account": str(record.get("accountId", "")),
        }
        dims |= {f"tag:{k}": v for k, v in record.get("cachepoint", {}).get("tags", {}).items()}
        for totals in [report.total, *(report.by[d][v] for d, v in dims.items())]:
            _add(totals, record, catalog)
    return report


def _add(totals: Totals, record: dict[str, Any], catalog: Catalog) -> None:
    usage = usage_of(record)
    totals.requests += 1
    totals.read += usage.cache_read_tokens
    totals.write += usage.cache_write_tokens
    totals.uncached += usage.input_tokens
    totals.output += usage.output_tokens
    priced = price(record, catalog)
    if priced is None:
        totals.unpriced += 1
        return
    totals.cost += priced[0]
    totals.uncached_cost += priced[1]
