"""ModelRef → the catalog row that serves it, with Bedrock's errors for identifiers it would refuse."""

from __future__ import annotations

from cachepoint.errors import ValidationError
from cachepoint.models.catalog import Catalog
from cachepoint.models.ids import INVALID_IDENTIFIER, ModelRef, RefKind
from cachepoint.models.spec import ModelSpec


def resolve_counting_spec(ref: ModelRef, catalog: Catalog) -> ModelSpec:
    """CountTokens takes only a foundation-model ID or ARN, and counts for profile-only models too."""
    spec = catalog.get(ref.model_id) if ref.kind is RefKind.FOUNDATION_MODEL else None
    if spec is None:
        raise ValidationError(INVALID_IDENTIFIER)
    return spec


def resolve_spec(ref: ModelRef, catalog: Catalog) -> ModelSpec:
    if ref.kind is RefKind.APPLICATION_PROFILE:
        raise ValidationError(INVALID_IDENTIFIER)
    spec = catalog.get(ref.model_id)
    if spec is None:
        raise ValidationError(INVALID_IDENTIFIER)
    if ref.kind is RefKind.SYSTEM_PROFILE and ref.geo not in spec.geos:
        raise ValidationError(INVALID_IDENTIFIER)
    if ref.kind is RefKind.FOUNDATION_MODEL and not spec.on_demand:
        raise ValidationError(
            f"Invocation of model ID {spec.model_id} with on-demand throughput isn\u2019t supported. "
            "Retry your request with the ID or ARN of an inference profile that contains this model."
        )
    return spec
