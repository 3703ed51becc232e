"""The model catalog: the packaged table merged with the user's overrides, queried by base model ID."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from decimal import Decimal
from importlib import resources
from typing import Any

from cachepoint.models.lifecycle import as_date, lifecycle_from_row
from cachepoint.models.spec import CachingRules, ModelSpec, Prices, Source
from cachepoint.types import Section, Ttl

PACKAGED_CATALOG = "models.toml"


def load_packaged_table() -> dict[str, Any]:
    text = resources.files("cachepoint.data").joinpath(PACKAGED_CATALOG).read_text()
    return tomllib.loads(text)


def merge_tables(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: tables merge key by key, anything else in `override` replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_tables(merged[key], value)
        else:
            merged[key] = value
    return merged


class Catalog:
    def __init__(
        self,
        specs: Mapping[str, ModelSpec],
        sources: Mapping[str, Source] | None = None,
        on_anthropic: Mapping[str, ModelSpec] | None = None,
        tier_factors: Mapping[str, Decimal] | None = None,
    ) -> None:
        self._specs = dict(specs)
        self.tier_factors = dict(tier_factors or {})  # service tier → price multiplier over the standard tier
        self.sources = dict(sources or {})
        self._on_anthropic = dict(on_anthropic or {})  # rows whose facts differ on the Anthropic API (/v1)

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> Catalog:
        families, rows = table.get("caching", {}), table.get("models", {})
        specs = {mid: _spec(mid, row, families) for mid, row in rows.items()}
        sources = {name: _source(name, row) for name, row in table.get("sources", {}).items()}
        differing = {mid: row for mid, row in rows.items() if "anthropic" in row}
        on_anthropic = {mid: _spec(mid, _anthropic_row(row), families) for mid, row in differing.items()}
        tiers = {name: Decimal(str(factor)) for name, factor in table.get("service_tiers", {}).items()}
        for spec in specs.values():
            if not spec.service_tiers <= tiers.keys():
                unpriced = sorted(spec.service_tiers - tiers.keys())
                raise ValueError(f"model catalog row {spec.model_id!r} offers unpriced tiers {unpriced}")
        return cls(specs, sources, on_anthropic, tiers)

    @classmethod
    def packaged(cls, overrides: Mapping[str, Any] | None = None) -> Catalog:
        return cls.from_table(merge_tables(load_packaged_table(), overrides or {}))

    def get(self, model_id: str) -> ModelSpec | None:
        return self._specs.get(model_id)

    def by_anthropic_name(self, name: str) -> ModelSpec | None:
        """Anthropic API model names: the dated name, its undated alias, or a Bedrock model ID; the row as the
        Anthropic API has it (its own minimums and retirement dates where they differ from Bedrock's)."""
        found = next((s for s in self._specs.values() if s.anthropic_name and name in _names(s.anthropic_name)), None)
        spec = found or self.get(name)
        return self._on_anthropic.get(spec.model_id, spec) if spec else None

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)


def _on_off(value: object, name: str) -> bool:
    return _choice(value, name, ("on", "off")) == "on"


def _choice(value: object, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be {' or '.join(repr(a) for a in allowed)}, not {value!r}")
    return str(value)


def _anthropic_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row with its `anthropic` overrides; a lifecycle there replaces Bedrock's whole (other dates, not more)."""
    merged = merge_tables(row, row["anthropic"])
    if "lifecycle" in row["anthropic"]:
        merged["lifecycle"] = row["anthropic"]["lifecycle"]
    return merged


def _names(anthropic_name: str) -> tuple[str, str]:
    """The dated name and its undated alias."""
    head, _, tail = anthropic_name.rpartition("-")
    return anthropic_name, (head if len(tail) == 8 and tail.isdigit() else anthropic_name)


def _spec(model_id: str, row: Mapping[str, Any], families: Mapping[str, Any]) -> ModelSpec:
    try:
        return ModelSpec(
            model_id=model_id,
            name=row["name"],
            provider=row["provider"],
            anthropic_name=row.get("anthropic_name"),
            context_window=int(row["context_window"]),
            max_output_tokens=int(row["max_output_tokens"]),
            on_demand=bool(row.get("on_demand", True)),
            geos=frozenset(row.get("geos", ())),
            engine=row.get("engine", "default"),
            caching=_caching(row, families),
            prices=_prices(row.get("prices")),
            global_price_factor=Decimal(row.get("global_price_factor", "1")),
            invoke_body=row.get("invoke_body", "anthropic" if row.get("anthropic_name") else None),
            lifecycle=lifecycle_from_row(row.get("lifecycle")),
            implicit_caching=_on_off(row.get("implicit_caching", "off"), "implicit_caching"),
            service_tiers=frozenset(row.get("service_tiers", ())),
            inference_geo=str(row.get("inference_geo", "not_available")),
            sources=tuple(row.get("sources", ())),
            checked=as_date(row["checked"]) if "checked" in row else None,
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"model catalog row {model_id!r} is invalid: {exc!r}") from exc


def _caching(row: Mapping[str, Any], families: Mapping[str, Any]) -> CachingRules | None:
    family_name = row.get("caching")
    if family_name is None:
        return None
    if family_name not in families:
        raise ValueError(f"unknown caching family {family_name!r}; known: {sorted(families)}")
    facts = merge_tables(families[family_name], {k: v for k, v in row.items() if k in _CACHING_KEYS})
    return CachingRules(
        min_tokens=int(facts["min_tokens"]),
        max_checkpoints=int(facts["max_checkpoints"]),
        fields=frozenset(Section(f) for f in facts["fields"]),
        ttls=frozenset(Ttl(t) for t in facts["ttls"]),
        lookback_blocks=int(facts["lookback_blocks"]),
        max_cache_tokens=facts.get("max_cache_tokens"),
        reject_unsupported_ttl=_choice(facts.get("on_unsupported_ttl", "downgrade"), "on_unsupported_ttl",
                                       ("downgrade", "reject")) == "reject",
        strict_ttl_reads=_choice(facts.get("ttl_reads", "reuse"), "ttl_reads", ("reuse", "rewrite")) == "rewrite",
    )  # fmt: skip


_CACHING_KEYS = {"min_tokens", "max_checkpoints", "fields", "ttls", "lookback_blocks", "max_cache_tokens",
                 "on_unsupported_ttl", "ttl_reads"}  # fmt: skip


def _prices(row: Mapping[str, str] | None) -> Prices | None:
    if row is None:
        return None
    optional = {k: Decimal(row[k]) for k in ("write_5m", "write_1h", "read") if k in row}
    return Prices(input=Decimal(row["input"]), output=Decimal(row["output"]), **optional)


def _source(name: str, row: Mapping[str, Any]) -> Source:
    try:
        return Source(name, str(row["url"]), as_date(row["read"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"catalog source {name!r} is invalid: {exc!r}") from exc
