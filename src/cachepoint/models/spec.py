"""Per-model facts as frozen values. Loaded from data (`data/models.toml` + user config), never if-chains."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from cachepoint.models.lifecycle import Lifecycle
from cachepoint.types import Section, Ttl


@dataclass(frozen=True)
class CachingRules:
    min_tokens: int
    max_checkpoints: int
    fields: frozenset[Section]
    ttls: frozenset[Ttl]
    lookback_blocks: int
    max_cache_tokens: int | None = None
    # Policies where sources differ (caching-semantics §12): a TTL the model does not offer is downgraded to 5m
    # (a third-party experiment on Bedrock) or refused; a 1h checkpoint reads a live 5m entry (Anthropic's
    # formula) or, strict, writes its prefix again at 1h (what one Bedrock experiment suggests).
    reject_unsupported_ttl: bool = False
    strict_ttl_reads: bool = False

    def __post_init__(self) -> None:
        if self.min_tokens < 1 or self.max_checkpoints < 1 or self.lookback_blocks < 1:
            raise ValueError("caching rules need min_tokens, max_checkpoints and lookback_blocks >= 1")
        if Ttl.FIVE_MINUTES not in self.ttls:
            raise ValueError("every caching model supports the 5m TTL")


@dataclass(frozen=True)
class Prices:
    """USD per million tokens at the in-Region / geographic pricing class."""

    input: Decimal
    output: Decimal
    write_5m: Decimal | None = None
    write_1h: Decimal | None = None
    read: Decimal | None = None


@dataclass(frozen=True)
class Source:
    """A public page the catalog's facts come from, and when it was read."""

    name: str
    url: str
    read: date


@dataclass(frozen=True)
class ModelSpec:
    model_id: str
    name: str
    provider: str
    context_window: int
    max_output_tokens: int
    on_demand: bool
    geos: frozenset[str]
    engine: str
    anthropic_name: str | None = None
    caching: CachingRules | None = None
    prices: Prices | None = None
    global_price_factor: Decimal = Decimal(1)
    invoke_body: str | None = None  # the InvokeModel body it takes: "anthropic", "nova", or none (Converse only)
    lifecycle: Lifecycle = Lifecycle()
    implicit_caching: bool = False  # AWS's implicit (markerless, best-effort) caching is on for it
    service_tiers: frozenset[str] = frozenset()  # tiers offered besides the standard one, priced by the catalog
    inference_geo: str = "not_available"  # what the Anthropic API's usage says of where inference ran
    sources: tuple[str, ...] = ()  # names in the catalog's [sources] table the row's facts come from
    checked: date | None = None  # when the row was last checked against them

    @property
    def supports_caching(self) -> bool:
        return self.caching is not None

    @property
    def speaks_anthropic(self) -> bool:
        """Whether InvokeModel takes the Anthropic Messages body for this model."""
        return self.anthropic_name is not None

    @property
    def response_model_name(self) -> str:
        return self.anthropic_name or self.model_id
