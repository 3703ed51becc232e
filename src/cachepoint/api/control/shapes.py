"""Control-plane response shapes (botocore's `bedrock` model): foundation models and inference profiles."""

from __future__ import annotations

from typing import Any

from cachepoint.models.lifecycle import LifecycleStatus
from cachepoint.models.spec import ModelSpec
from cachepoint.routing.profiles import AppProfile
from cachepoint.routing.regions import Region

GEO_NAMES = {
    "us": "US",
    "eu": "EU",
    "apac": "APAC",
    "jp": "JP",
    "au": "AU",
    "ca": "CA",
    "global": "Global",
    "us-gov": "US-GOV",
}
EPOCH = "2024-01-01T00:00:00Z"


def foundation_model_arn(region: str, model_id: str) -> str:
    return f"arn:aws:bedrock:{region}::foundation-model/{model_id}"


def model_summary(spec: ModelSpec, region: str, status: LifecycleStatus = LifecycleStatus.ACTIVE) -> dict[str, Any]:
    return {
        "modelArn": foundation_model_arn(region, spec.model_id),
        "modelId": spec.model_id,
        "modelName": spec.name,
        "providerName": spec.provider,
        "inputModalities": ["TEXT"],
        "outputModalities": ["TEXT"],
        "responseStreamingSupported": True,
        "customizationsSupported": [],
        "inferenceTypesSupported": ["ON_DEMAND"] if spec.on_demand else ["INFERENCE_PROFILE"],
        "modelLifecycle": model_lifecycle(spec, status),
    }


def model_lifecycle(spec: ModelSpec, status: LifecycleStatus) -> dict[str, Any]:
    """botocore's `FoundationModelLifecycle`: ACTIVE or LEGACY (a model served past its end of life under the
    `report` policy is LEGACY with its `endOfLifeTime` in the past: the API has no other status)."""
    api_status = "ACTIVE" if status is LifecycleStatus.ACTIVE else "LEGACY"
    return {"status": api_status} | spec.lifecycle.api_dates()


def system_profile(
    spec: ModelSpec, geo: str, source: str, account: str, destinations: tuple[Region, ...]
) -> dict[str, Any]:
    profile_id = f"{geo}.{spec.model_id}"
    names = [str(r.region_id) for r in destinations]
    listed = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
    return {
        "inferenceProfileName": f"{GEO_NAMES.get(geo, geo.upper())} {spec.name}",
        "description": f"Routes requests to {spec.name} in {listed}.",
        "createdAt": EPOCH,
        "updatedAt": EPOCH,
        "inferenceProfileArn": f"arn:aws:bedrock:{source}:{account}:inference-profile/{profile_id}",
        "models": [{"modelArn": foundation_model_arn(r, spec.model_id)} for r in names],
        "inferenceProfileId": profile_id,
        "status": "ACTIVE",
        "type": "SYSTEM_DEFINED",
    }


def application_profile(profile: AppProfile) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "inferenceProfileName": profile.name,
        "createdAt": profile.created_at,
        "updatedAt": profile.updated_at,
        "inferenceProfileArn": profile.arn,
        "models": [{"modelArn": foundation_model_arn(r, profile.model_id)} for r in profile.regions],
        "inferenceProfileId": profile.profile_id,
        "status": "ACTIVE",
        "type": "APPLICATION",
    }
    if profile.description:
        shape["description"] = profile.description
    return shape
