"""Bedrock control plane: foundation models, inference profiles (system and application), tags.

Application profiles and tags belong to the caller's account; system profiles are listed for the
caller's Region (its source Region), with the destinations that Region routes to.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cachepoint.api.common import call_context, json_body, parse, services_of
from cachepoint.api.control import shapes
from cachepoint.api.errors import request_id_of
from cachepoint.api.validation import coral_message
from cachepoint.errors import ResourceNotFoundError, ValidationError
from cachepoint.models.ids import INVALID_IDENTIFIER, ModelRef, RefKind, parse_model_identifier
from cachepoint.service import InferenceService
from cachepoint.types import CallContext

TAG_PATTERN = r"^[a-zA-Z0-9\s._:/=+@-]*$"


class TagIn(BaseModel):
    key: str = Field(min_length=1, max_length=128, pattern=TAG_PATTERN)
    value: str = Field(max_length=256, pattern=TAG_PATTERN)


class ModelSourceIn(BaseModel):
    copyFrom: str = Field(min_length=1, max_length=2048)


class CreateProfileIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    inferenceProfileName: str = Field(min_length=1, max_length=64, pattern=r"^([0-9a-zA-Z][ _-]?)+$")
    description: str | None = Field(default=None, min_length=1, max_length=200)
    modelSource: ModelSourceIn
    tags: list[TagIn] = Field(default_factory=list, max_length=200)


class TagResourceIn(BaseModel):
    resourceARN: str = Field(min_length=20, max_length=1011)
    tags: list[TagIn] = Field(max_length=200)


class UntagResourceIn(BaseModel):
    resourceARN: str = Field(min_length=20, max_length=1011)
    tagKeys: list[str] = Field(max_length=200)


class ResourceIn(BaseModel):
    resourceARN: str = Field(min_length=20, max_length=1011)


def _json(body: dict[str, Any], request: Request, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status, headers={"x-amzn-RequestId": request_id_of(request)})


async def list_foundation_models(request: Request) -> Response:
    ctx, inference = call_context(request), services_of(request).inference
    provider = request.query_params.get("byProvider", "").lower()
    kind = request.query_params.get("byInferenceType")
    summaries = [shapes.model_summary(spec, ctx.region) for spec in inference.catalog]
    summaries = [s for s in summaries if not provider or s["providerName"].lower() == provider]
    summaries = [s for s in summaries if not kind or kind in s["inferenceTypesSupported"]]
    return _json({"modelSummaries": summaries}, request)


async def get_foundation_model(request: Request) -> Response:
    ctx, inference = call_context(request), services_of(request).inference
    identifier = request.path_params["identifier"]
    spec = inference.catalog.get(identifier.rsplit("/", 1)[-1])
    if spec is None:
        raise ResourceNotFoundError(f"The model {identifier} does not exist.")
    return _json({"modelDetails": shapes.model_summary(spec, ctx.region)}, request)


def _system_profiles(inference: InferenceService, ctx: CallContext) -> list[dict[str, Any]]:
    found = []
    for spec in inference.catalog:
        for geo in sorted(spec.geos):
            try:
                destinations = inference.regions.destinations(geo, ctx.region)
            except ValidationError:  # this geography is not reachable from the caller's Region
                continue
            found.append(shapes.system_profile(spec, geo, ctx.region, ctx.account_id, destinations))
    return found


async def list_profiles(request: Request) -> Response:
    ctx, inference = call_context(request), services_of(request).inference
    kind = request.query_params.get("type", "SYSTEM_DEFINED")
    if kind not in ("SYSTEM_DEFINED", "APPLICATION"):
        raise ValidationError(coral_enum("type", kind, "SYSTEM_DEFINED, APPLICATION"))
    items = _system_profiles(inference, ctx) if kind == "SYSTEM_DEFINED" else [
        shapes.application_profile(p) for p in inference.profiles.list(ctx.account_id)
    ]  # fmt: skip
    start, size = _page(request)
    body: dict[str, Any] = {"inferenceProfileSummaries": items[start : start + size]}
    if start + size < len(items):
        body["nextToken"] = str(start + size)
    return _json(body, request)


def _page(request: Request) -> tuple[int, int]:
    try:
        size = int(request.query_params.get("maxResults", "1000"))
        start = int(request.query_params.get("nextToken", "0"))
    except ValueError:
        raise ValidationError("Invalid pagination parameters.") from None
    if not 1 <= size <= 1000 or start < 0:
        raise ValidationError("maxResults must be 1..1000.")
    return start, size


async def get_profile(request: Request) -> Response:
    return _json(_find_profile(request, request.path_params["identifier"]), request)


def _find_profile(request: Request, identifier: str) -> dict[str, Any]:
    ctx, inference = call_context(request), services_of(request).inference
    ref = _parse_or_none(identifier)
    if ref is None or ref.kind is RefKind.APPLICATION_PROFILE:
        profile = inference.profiles.get(ctx.account_id, ref.model_id if ref else identifier)
        if profile is not None:
            return shapes.application_profile(profile)
    elif ref.kind is RefKind.SYSTEM_PROFILE and (spec := inference.catalog.get(ref.model_id)) and ref.geo in spec.geos:
        destinations = inference.regions.destinations(str(ref.geo), ctx.region)
        return shapes.system_profile(spec, str(ref.geo), ctx.region, ctx.account_id, destinations)
    raise ResourceNotFoundError(f"Inference profile {identifier} does not exist.")


def _parse_or_none(identifier: str) -> ModelRef | None:
    """None for a bare application-profile ID, which is not a model identifier on its own."""
    try:
        return parse_model_identifier(identifier)
    except ValidationError:
        return None


async def create_profile(request: Request) -> Response:
    ctx, inference = call_context(request), services_of(request).inference
    body = parse(CreateProfileIn, await json_body(request), coral_message)
    model_id, regions = _copy_source(inference, ctx, body.modelSource.copyFrom)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(services_of(request).clock.now_s()))
    profile = inference.profiles.create(
        ctx.account_id,
        ctx.region,
        body.inferenceProfileName,
        body.description,
        body.modelSource.copyFrom,
        model_id,
        regions,
        now,
    )
    if body.tags:
        inference.profiles.tag(ctx.account_id, profile.arn, {t.key: t.value for t in body.tags})
    return _json({"inferenceProfileArn": profile.arn, "status": "ACTIVE"}, request, status=201)


def _copy_source(inference: InferenceService, ctx: CallContext, copy_from: str) -> tuple[str, tuple[str, ...]]:
    """A foundation-model ARN (one Region) or a system-profile ARN (its destination Regions)."""
    ref = parse_model_identifier(copy_from)
    spec = inference.catalog.get(ref.model_id)
    if ref.arn_region is None or spec is None or ref.kind is RefKind.APPLICATION_PROFILE:
        raise ValidationError(f"The provided model source {copy_from} is invalid. {INVALID_IDENTIFIER}")
    if ref.kind is RefKind.FOUNDATION_MODEL:
        inference.regions.region(ref.arn_region)
        return spec.model_id, (ref.arn_region,)
    destinations = inference.regions.destinations(str(ref.geo), ref.arn_region)
    return spec.model_id, tuple(str(r.region_id) for r in destinations)


async def delete_profile(request: Request) -> Response:
    ctx, inference = call_context(request), services_of(request).inference
    identifier = request.path_params["identifier"]
    ref = _parse_or_none(identifier)
    if ref is not None and ref.kind is not RefKind.APPLICATION_PROFILE:
        raise ValidationError("System-defined inference profiles cannot be deleted.")
    inference.profiles.delete(ctx.account_id, ref.model_id if ref else identifier)
    return _json({}, request)


async def tag_resource(request: Request) -> Response:
    ctx, inference = call_context(request), services_of(request).inference
    body = parse(TagResourceIn, await json_body(request), coral_message)
    _require_own_app_profile(request, body.resourceARN)
    inference.profiles.tag(ctx.account_id, body.resourceARN, {t.key: t.value for t in body.tags})
    return _json({}, request)


async def untag_resource(request: Request) -> Response:
    ctx, inference = call_context(request), services_of(request).inference
    body = parse(UntagResourceIn, await json_body(request), coral_message)
    _require_own_app_profile(request, body.resourceARN)
    inference.profiles.untag(ctx.account_id, body.resourceARN, body.tagKeys)
    return _json({}, request)


async def list_tags(request: Request) -> Response:
    ctx, inference = call_context(request), services_of(request).inference
    body = parse(ResourceIn, await json_body(request), coral_message)
    _require_own_app_profile(request, body.resourceARN)
    tags = inference.profiles.tags(ctx.account_id, body.resourceARN)
    return _json({"tags": [{"key": k, "value": v} for k, v in tags.items()]}, request)


def _require_own_app_profile(request: Request, arn: str) -> None:
    ctx, inference = call_context(request), services_of(request).inference
    try:
        ref = parse_model_identifier(arn)
    except ValidationError:
        raise ResourceNotFoundError(f"Resource {arn} does not exist.") from None
    if ref.kind is not RefKind.APPLICATION_PROFILE:
        raise ValidationError("Only application inference profiles can be tagged.")
    if inference.profiles.get(ctx.account_id, ref.model_id) is None:
        raise ResourceNotFoundError(f"Resource {arn} does not exist.")


def coral_enum(field: str, value: str, allowed: str) -> str:
    return (
        f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: "
        f"Member must satisfy enum value set: [{allowed}]"
    )
