from decimal import Decimal

import pytest

from cachepoint.errors import ValidationError
from cachepoint.models.catalog import Catalog
from cachepoint.models.ids import RefKind, parse_model_identifier
from cachepoint.models.resolve import resolve_spec
from cachepoint.types import Section, Ttl

CATALOG = Catalog.packaged()
SONNET_45 = "anthropic.claude-sonnet-4-5-20250929-v1:0"


def test_catalog_rows_carry_the_documented_caching_facts() -> None:
    sonnet = CATALOG.get(SONNET_45)
    assert sonnet is not None and sonnet.caching is not None
    assert (sonnet.caching.min_tokens, sonnet.caching.max_checkpoints, sonnet.caching.lookback_blocks) == (1024, 4, 20)
    assert sonnet.caching.ttls == {Ttl.FIVE_MINUTES, Ttl.ONE_HOUR}
    haiku35 = CATALOG.get("anthropic.claude-3-5-haiku-20241022-v1:0")
    assert (
        haiku35
        and haiku35.caching
        and haiku35.caching.min_tokens == 2048
        and haiku35.caching.ttls == {Ttl.FIVE_MINUTES}
    )
    nova = CATALOG.get("amazon.nova-pro-v1:0")
    assert nova and nova.caching and Section.TOOLS not in nova.caching.fields and nova.caching.max_cache_tokens == 20000
    assert nova.prices and nova.prices.read == Decimal("0.20")
    llama = CATALOG.get("meta.llama3-3-70b-instruct-v1:0")
    assert llama and not llama.supports_caching


def test_every_required_family_is_present() -> None:
    names = {spec.name for spec in CATALOG}
    for required in (
        "Claude 3.5 Haiku",
        "Claude 3.7 Sonnet",
        "Claude Sonnet 4",
        "Claude Sonnet 4.5",
        "Claude Haiku 4.5",
        "Claude Opus 4.1",
        "Claude Opus 4.5",
        "Nova Micro",
        "Nova Lite",
        "Nova Pro",
        "Nova Premier",
    ):
        assert required in names


def test_overrides_merge_into_a_row() -> None:
    catalog = Catalog.packaged({"models": {SONNET_45: {"min_tokens": 2048, "engine": "qwen"}}})
    spec = catalog.get(SONNET_45)
    assert spec and spec.caching and spec.caching.min_tokens == 2048 and spec.engine == "qwen"
    assert spec.caching.lookback_blocks == 20  # the family's value survives


@pytest.mark.parametrize(
    ("raw", "kind", "model_id", "geo"),
    [
        (SONNET_45, RefKind.FOUNDATION_MODEL, SONNET_45, None),
        ("us." + SONNET_45, RefKind.SYSTEM_PROFILE, SONNET_45, "us"),
        ("us-gov." + SONNET_45, RefKind.SYSTEM_PROFILE, SONNET_45, "us-gov"),
        ("arn:aws:bedrock:us-east-1::foundation-model/" + SONNET_45, RefKind.FOUNDATION_MODEL, SONNET_45, None),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/global." + SONNET_45,
            RefKind.SYSTEM_PROFILE,
            SONNET_45,
            "global",
        ),
        (
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/k1c3lwu20lem",
            RefKind.APPLICATION_PROFILE,
            "k1c3lwu20lem",
            None,
        ),
    ],
)
def test_identifier_forms(raw: str, kind: RefKind, model_id: str, geo: str | None) -> None:
    ref = parse_model_identifier(raw)
    assert (ref.kind, ref.model_id, ref.geo, ref.raw) == (kind, model_id, geo, raw)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "nonsense",
        "arn:aws:bedrock:us-east-1:1:foo/bar",
        "arn:aws:bedrock:us-east-1::foundation-model/us." + SONNET_45,
    ],
)
def test_malformed_identifiers_are_rejected(raw: str) -> None:
    with pytest.raises(ValidationError, match="The provided model identifier is invalid."):
        parse_model_identifier(raw)


def test_resolution_follows_bedrock_rules() -> None:
    assert resolve_spec(parse_model_identifier("eu." + SONNET_45), CATALOG).model_id == SONNET_45
    with pytest.raises(ValidationError, match="The provided model identifier is invalid."):
        resolve_spec(parse_model_identifier("anthropic.claude-unknown-v1:0"), CATALOG)
    with pytest.raises(ValidationError, match="The provided model identifier is invalid."):
        resolve_spec(parse_model_identifier("jp.anthropic.claude-3-7-sonnet-20250219-v1:0"), CATALOG)
    with pytest.raises(ValidationError) as info:
        resolve_spec(parse_model_identifier("anthropic.claude-sonnet-4-20250514-v1:0"), CATALOG)
    assert info.value.message == (
        "Invocation of model ID anthropic.claude-sonnet-4-20250514-v1:0 with on-demand throughput isn\u2019t supported. "
        "Retry your request with the ID or ARN of an inference profile that contains this model."
    )
    assert resolve_spec(parse_model_identifier("amazon.nova-lite-v1:0"), CATALOG).name == "Nova Lite"
