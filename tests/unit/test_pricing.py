from decimal import Decimal

from cachepoint.accounting.pricing import cost_usd, uncached_cost_usd
from cachepoint.accounting.usage import Usage
from cachepoint.models.catalog import Catalog

CATALOG = Catalog.packaged()
SONNET_37 = CATALOG.get("anthropic.claude-3-7-sonnet-20250219-v1:0").prices  # type: ignore[union-attr]
SONNET_45 = CATALOG.get("anthropic.claude-sonnet-4-5-20250929-v1:0")


def test_aws_blog_worked_costs() -> None:
    assert cost_usd(Usage(9, 357, 0, 37209), SONNET_37) == Decimal("0.14491575")
    second = Usage(10, 324, 37209, 0)
    assert cost_usd(second, SONNET_37) == Decimal("0.0160527")
    assert uncached_cost_usd(second, SONNET_37) == Decimal("0.116517")
    assert cost_usd(Usage(9, 385, 1038, 37888), SONNET_37) == Decimal("0.1481934")


def test_one_hour_writes_and_the_global_discount() -> None:
    assert SONNET_45 is not None and SONNET_45.prices is not None
    usage = Usage(30, 0, 0, cache_write_5m_tokens=3000, cache_write_1h_tokens=5000)
    geo = cost_usd(usage, SONNET_45.prices)
    assert geo == (30 * Decimal("3.30") + 3000 * Decimal("4.125") + 5000 * Decimal("6.60")) / 1_000_000
    assert cost_usd(usage, SONNET_45.prices, SONNET_45.global_price_factor).quantize(Decimal("1e-9")) == (
        (30 * Decimal("3.00") + 3000 * Decimal("3.75") + 5000 * Decimal("6.00")) / 1_000_000
    ).quantize(Decimal("1e-9"))
