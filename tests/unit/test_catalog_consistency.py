"""Every row of the packaged model catalog is internally consistent: what a model offers is callable, priced
and described the way the rest of the server needs it."""

from __future__ import annotations

from datetime import date

import pytest

from cachepoint.models.catalog import Catalog
from cachepoint.models.ids import parse_model_identifier
from cachepoint.models.resolve import resolve_spec
from cachepoint.models.spec import ModelSpec
from cachepoint.routing.regions import RegionMap
from cachepoint.types import Ttl

CATALOG = Catalog.packaged()
REGIONS = RegionMap.packaged()
ROWS = sorted(CATALOG, key=lambda spec: spec.model_id)
TODAY = date(2026, 12, 1)  # the catalog's last check: no source may claim a later reading


@pytest.mark.parametrize("spec", ROWS, ids=lambda spec: spec.model_id)
def test_every_profile_a_model_names_resolves_back_to_it(spec: ModelSpec) -> None:
    assert spec.geos or spec.on_demand, "a model callable neither on demand nor through a profile"
    for geo in spec.geos:
        assert geo in REGIONS.geos, f"{geo}. is not a configured geography"
        assert resolve_spec(parse_model_identifier(f"{geo}.{spec.model_id}"), CATALOG) is spec
    if spec.on_demand:
        assert resolve_spec(parse_model_identifier(spec.model_id), CATALOG) is spec


@pytest.mark.parametrize("spec", ROWS, ids=lambda spec: spec.model_id)
def test_prices_match_the_caching_a_model_offers(spec: ModelSpec) -> None:
    if spec.prices is None:
        return  # the newest models: rules published, prices not yet (the catalog says so; cost figures need them)
    p = spec.prices
    assert p.input > 0 and p.output > 0
    if spec.caching is None:
        assert p.read is None and p.write_5m is None and p.write_1h is None
        return
    assert p.read is not None and p.write_5m is not None, "a caching model needs read and write prices"
    assert p.read < p.input <= p.write_5m, "reads cost less than input, writes at least as much"
    if Ttl.ONE_HOUR in spec.caching.ttls:
        assert p.write_1h is not None and p.write_1h >= p.write_5m


@pytest.mark.parametrize("spec", ROWS, ids=lambda spec: spec.model_id)
def test_caching_rules_and_bodies_are_set(spec: ModelSpec) -> None:
    if spec.caching is not None:
        assert spec.caching.min_tokens >= 1 and Ttl.FIVE_MINUTES in spec.caching.ttls
        ceiling = spec.caching.max_cache_tokens
        assert ceiling is None or ceiling > spec.caching.min_tokens
        assert spec.caching.min_tokens < spec.context_window
    assert (spec.invoke_body == "anthropic") == (spec.anthropic_name is not None)
    assert spec.invoke_body in ("anthropic", "nova", None)
    assert 0 < spec.max_output_tokens <= spec.context_window
    assert CATALOG.get(spec.model_id) is spec
    if spec.anthropic_name is not None:
        on_anthropic = CATALOG.by_anthropic_name(spec.anthropic_name)
        assert on_anthropic is not None and on_anthropic.model_id == spec.model_id
        assert on_anthropic.prices == spec.prices and on_anthropic.geos == spec.geos  # only rules and dates differ


@pytest.mark.parametrize("spec", ROWS, ids=lambda spec: spec.model_id)
def test_every_row_names_its_sources_and_when_it_was_checked(spec: ModelSpec) -> None:
    assert spec.sources, "a row without sources"
    for name in spec.sources:
        source = CATALOG.sources[name]
        assert source.url.startswith("https://") and source.read <= TODAY
    assert spec.checked is not None and spec.checked <= TODAY
    assert len(set(spec.sources)) == len(spec.sources)
    if spec.lifecycle.end_of_life is not None or spec.lifecycle.legacy is not None:
        assert {"aws-model-lifecycle", "aws-startups-lifecycle"} & set(spec.sources), "lifecycle dates need a source"


def test_disputed_facts_are_overridden_per_surface() -> None:
    """Opus 4.7's minimum: AWS's table says 4,096 (Bedrock's surfaces), Anthropic's list 2,048 (/v1)."""
    bedrock, anthropic = CATALOG.get("anthropic.claude-opus-4-7"), CATALOG.by_anthropic_name("claude-opus-4-7")
    assert bedrock is not None and bedrock.caching is not None and bedrock.caching.min_tokens == 4096
    assert anthropic is not None and anthropic.caching is not None and anthropic.caching.min_tokens == 2048
    haiku = CATALOG.by_anthropic_name("claude-3-5-haiku")
    assert haiku is not None and str(haiku.lifecycle.end_of_life) == "2026-02-19"  # Anthropic retired it first
    assert str(CATALOG.get("anthropic.claude-3-5-haiku-20241022-v1:0").lifecycle.end_of_life) == "2026-06-19"  # type: ignore[union-attr]
