"""Cost of one request from its Usage and the model's prices (USD per 1M tokens), in Decimal throughout.

Never derived from a view that folds cache tokens into input: read and write buckets are priced apart.
`factor` scales every price (the global-profile discount); per-request costs are not rounded.
"""

from __future__ import annotations

from decimal import Decimal

from cachepoint.accounting.usage import Usage
from cachepoint.models.spec import Prices

MILLION = Decimal(1_000_000)


def cost_usd(usage: Usage, prices: Prices, factor: Decimal = Decimal(1)) -> Decimal:
    read = prices.read if prices.read is not None else prices.input
    write_5m = prices.write_5m if prices.write_5m is not None else prices.input
    write_1h = prices.write_1h if prices.write_1h is not None else write_5m
    total = (
        usage.input_tokens * prices.input
        + usage.cache_read_tokens * read
        + usage.cache_write_5m_tokens * write_5m
        + usage.cache_write_1h_tokens * write_1h
        + usage.output_tokens * prices.output
    )
    return total * factor / MILLION


def uncached_cost_usd(usage: Usage, prices: Prices, factor: Decimal = Decimal(1)) -> Decimal:
    """What the same request would have cost with no caching at all: every prompt token at the input price."""
    return cost_usd(Usage(usage.prompt_tokens, usage.output_tokens), prices, factor)
