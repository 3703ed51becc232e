"""Cost and savings of logged requests at the catalog's prices, aggregated by any dimension."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cachepoint.accounting.pricing import cost_usd, uncached_cost_usd
from cachepoint.accounting.usage import Usage
from cachepoint.doctor.records import LogRecord, as_records
from cachepoint.errors import CachepointError
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


def usage_of(record: LogRecord) -> Usage:
    return Usage(
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        cache_read_tokens=record.cache_read_tokens,
        cache_write_5m_tokens=record.cache_write_tokens - record.cache_write_1h_tokens,
        cache_write_1h_tokens=record.cache_write_1h_tokens,
    )


def price(record: LogRecord, catalog: Catalog) -> tuple[Decimal, Decimal] | None:
    """(cost, uncached cost) of one record, or None when the model ID does not parse or has no configured price."""
    try:
        ref = parse_model_identifier(record.model_id)
    except CachepointError:  # "::::", an ARN of garbage: unpriced, like a model we have no price for
        return None
    spec = catalog.get(ref.model_id) if ref.kind is not RefKind.APPLICATION_PROFILE else None
    if spec is None or spec.prices is None:
        return None
    factor = spec.global_price_factor if ref.geo == "global" else Decimal(1)
    usage = usage_of(record)
    return cost_usd(usage, spec.prices, factor), uncached_cost_usd(usage, spec.prices, factor)


def cost_report(records: Iterable[LogRecord | Mapping[str, Any]], catalog: Catalog) -> CostReport:
    """Raw mappings are validated first (`Rejected` if one is invalid); records from `load_records` are typed."""
    report = CostReport()
    for record in as_records(records):
        if record.error_code is not None:
            continue
        dims = {"model": record.model_id, "region": record.inference_region, "account": record.account_id}
        dims |= {f"tag:{k}": v for k, v in record.tags.items()}
        usage, priced = usage_of(record), price(record, catalog)  # once per record, not once per dimension
        for totals in [report.total, *(report.by[d][v] for d, v in dims.items())]:
            _add(totals, usage, priced)
    return report


def _add(totals: Totals, usage: Usage, priced: tuple[Decimal, Decimal] | None) -> None:
    totals.requests += 1
    totals.read += usage.cache_read_tokens
    totals.write += usage.cache_write_tokens
    totals.uncached += usage.input_tokens
    totals.output += usage.output_tokens
    if priced is None:
        totals.unpriced += 1
        return
    totals.cost += priced[0]
    totals.uncached_cost += priced[1]
