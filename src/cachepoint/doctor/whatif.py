"""What a 1-hour TTL would have changed, computed from the logged requests (pure).

An expiry whose gap since the last use was at most an hour, on a model that offers the 1h TTL, would have
been a read: its 5-minute write (`write_5m` per token) becomes a read (`read`), and the write before it costs
the 1h price instead of the 5m one (`write_1h - write_5m` more). Each such expiry saves
`tokens × (write_5m - read - (write_1h - write_5m))` at the model's list prices (in-Region pricing class).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from cachepoint.doctor.analysis import Finding
from cachepoint.models.catalog import Catalog
from cachepoint.models.spec import ModelSpec
from cachepoint.types import Ttl

HOUR_S = 3600
PER_MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class LongerTtl:
    expiries: int  # every TTL expiry in the logs
    turned: int  # of them, those a 1h TTL would have kept
    saved_usd: Decimal  # what those would have saved, all costs counted


def longer_ttl(findings: list[Finding], catalog: Catalog) -> LongerTtl | None:
    expired = [f for f in findings if f.cause == "ttl-expired"]
    if not expired:
        return None
    turned, saved = 0, Decimal(0)
    for finding in expired:
        spec = catalog.get(finding.request.base_model)
        if finding.data.get("gap_s", HOUR_S + 1) > HOUR_S or spec is None or not _offers_one_hour(spec):
            continue
        turned += 1
        saved += _saving(spec, finding.request.write)
    return LongerTtl(len(expired), turned, saved)


def _offers_one_hour(spec: ModelSpec) -> bool:
    prices = spec.prices
    return (spec.caching is not None and Ttl.ONE_HOUR in spec.caching.ttls and prices is not None
            and None not in (prices.write_5m, prices.write_1h, prices.read))  # fmt: skip


def _saving(spec: ModelSpec, tokens: int) -> Decimal:
    p = spec.prices
    assert p is not None and p.write_5m is not None and p.write_1h is not None and p.read is not None
    return tokens * (p.write_5m - p.read - (p.write_1h - p.write_5m)) / PER_MILLION
