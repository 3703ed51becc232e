"""Regions and system-profile geographies as data (`data/regions.toml` merged with the user's config).

A Region can be `down` (never chosen) or have prompt caching disabled for some models, which
reproduces the published log of a destination Region that never cached. Its `replicas` are the engines that
serve it: "embedded" (this process's engine, the default), "node://HOST:PORT" (a `cachepoint node`),
"vllm://HOST:PORT" (a vLLM server).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from cachepoint.errors import ValidationError
from cachepoint.models.catalog import merge_tables
from cachepoint.models.ids import INVALID_IDENTIFIER
from cachepoint.types import RegionId

ALL = "*"
EMBEDDED = "embedded"
_REMOTE = re.compile(r"(node|vllm)://[A-Za-z0-9.\-\[\]:]+:\d{1,5}")
MAX_REPLICAS = 64


@dataclass(frozen=True)
class Region:
    region_id: RegionId
    down: bool = False
    caching_disabled: frozenset[str] = frozenset()  # model IDs, or "*" for every model
    replicas: tuple[str, ...] = (EMBEDDED,)

    def caches(self, model_id: str) -> bool:
        return not ({model_id, ALL} & self.caching_disabled)


@dataclass(frozen=True)
class Geo:
    prefix: str
    sources: frozenset[str]
    destinations: tuple[str, ...]


class RegionMap:
    def __init__(self, regions: Mapping[str, Region], geos: Mapping[str, Geo]) -> None:
        self.regions = dict(regions)
        self.geos = dict(geos)

    @classmethod
    def packaged(cls, overrides: Mapping[str, Any] | None = None) -> RegionMap:
        table = tomllib.loads(resources.files("cachepoint.data").joinpath("regions.toml").read_text())
        table = merge_tables(table, overrides or {})
        regions = {rid: _region(rid, row) for rid, row in table.get("regions", {}).items()}
        geos = {p: Geo(p, frozenset(row["sources"]), tuple(row["destinations"])) for p, row in table["geos"].items()}
        return cls(regions, geos)

    def region(self, region_id: str) -> Region:
        region = self.regions.get(region_id)
        if region is None:
            raise ValidationError(
                f"Region {region_id} is not configured; configured Regions: {', '.join(sorted(self.regions))}."
            )
        return region

    def destinations(self, geo: str, source: str) -> tuple[Region, ...]:
        """The configured destination Regions of a geography's profile called from `source`."""
        spec = self.geos.get(geo)
        if spec is None or not (ALL in spec.sources or source in spec.sources):
            raise ValidationError(INVALID_IDENTIFIER)
        wanted = list(self.regions) if ALL in spec.destinations else [*spec.destinations, source]
        found = tuple(dict.fromkeys(self.regions[r] for r in wanted if r in self.regions))
        if not found:
            raise ValidationError(INVALID_IDENTIFIER)
        return found


def _region(region_id: str, row: Mapping[str, Any]) -> Region:
    disabled = row.get("prompt_caching_disabled", [])
    return Region(
        RegionId(region_id),
        bool(row.get("down", False)),
        frozenset([disabled] if isinstance(disabled, str) else disabled),
        _replicas(region_id, row.get("replicas", [EMBEDDED])),
    )


def _replicas(region_id: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_REPLICAS:
        raise ValueError(f"[regions.{region_id}] replicas must be a list of 1 to {MAX_REPLICAS} replicas")
    for name in value:
        if not isinstance(name, str) or not (name == EMBEDDED or _REMOTE.fullmatch(name)):
            raise ValueError(
                f'[regions.{region_id}] replicas: {name!r} is not "embedded", "node://HOST:PORT" or "vllm://HOST:PORT"'
            )
    if len(set(value)) != len(value):
        raise ValueError(f"[regions.{region_id}] replicas are listed twice")
    return tuple(value)
