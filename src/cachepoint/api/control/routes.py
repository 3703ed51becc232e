"""Bedrock control plane: foundation models, inference profiles (system and application), tags.
Each handler parses, makes one `ControlService` call, and renders the result in botocore's shapes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cachepoint.api.common import call_context, decoded_body, services_of
from cachepoint.api.control import shapes
from cachepoint.api.decoding import model_decoder
from cachepoint.api.errors import request_id_of
from cachepoint.api.validation import coral_message, coral_value_error
from cachepoint.errors import ValidationError
from cachepoint.service.control import ControlService, SystemProfile
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


def _control(request: Request) -> tuple[CallContext, ControlService]:
    return call_context(request), services_of(request).control


# ListFoundationModels' query filters: parameter → (summary member, enum values or None for free text)
MODEL_FILTERS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "byProvider": ("providerName", None),
    "byInferenceType": ("inferenceTypesSupported", ("ON_DEMAND", "PROVISIONED")),
    "byOutputModality": ("outputModalities", ("TEXT", "IMAGE", "EMBEDDING")),
    "byCustomizationType": ("customizationsSupported", ("FINE_TUNING", "CONTINUED_PRE_TRAINING", "DISTILLATION")),
}


async def list_foundation_models(request: Request) -> Response:
    ctx, control = _control(request)
    summaries = [shapes.model_summary(m.spec, ctx.region, m.status) for m in control.models()]
    for parameter, (member, allowed) in MODEL_FILTERS.items():
        value = request.query_params.get(parameter)
        if value is None:
            continue
        if allowed is not None and value not in allowed:
            raise ValidationError(coral_enum(parameter, value, ", ".join(allowed)))
        summaries = [s for s in summaries if _matches(s[member], value)]
    return _json({"modelSummaries": summaries}, request)


def _matches(member: str | list[str], value: str) -> bool:
    return value in member if isinstance(member, list) else member.lower() == value.lower()


async def get_foundation_model(request: Request) -> Response:
    ctx, control = _control(request)
    listed = control.model(request.path_params["identifier"])
    return _json({"modelDetails": shapes.model_summary(listed.spec, ctx.region, listed.status)}, request)


async def list_profiles(request: Request) -> Response:
    ctx, control = _control(request)
    kind = request.query_params.get("type", "SYSTEM_DEFINED")
    if kind not in ("SYSTEM_DEFINED", "APPLICATION"):
        raise ValidationError(coral_enum("type", kind, "SYSTEM_DEFINED, APPLICATION"))
    start, size = _page(request)
    if kind == "SYSTEM_DEFINED":
        items = [_profile_shape(ctx, p) for p in control.system_profiles(ctx)]
    else:
        items = [shapes.application_profile(p) for p in control.application_profiles(ctx)]
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
    if not 1 <= size <= 1000:
        bound = "greater than or equal to 1" if size < 1 else "less than or equal to 1000"
        raise ValidationError(coral_value_error("maxResults", size, f"Member must have value {bound}"))
    if start < 0:
        raise ValidationError("Invalid pagination parameters.")
    return start, size


async def get_profile(request: Request) -> Response:
    ctx, control = _control(request)
    return _json(_profile_shape(ctx, control.profile(ctx, request.path_params["identifier"])), request)


def _profile_shape(ctx: CallContext, profile: Any) -> dict[str, Any]:
    if isinstance(profile, SystemProfile):
        return shapes.system_profile(profile.spec, profile.geo, ctx.region, ctx.account_id, profile.destinations)
    return shapes.application_profile(profile)


async def create_profile(request: Request) -> Response:
    ctx, control = _control(request)
    body = await decoded_body(request, model_decoder(CreateProfileIn, coral_message))
    tags = {t.key: t.value for t in body.tags}
    profile = control.create_profile(ctx, body.inferenceProfileName, body.description, body.modelSource.copyFrom, tags)
    return _json({"inferenceProfileArn": profile.arn, "status": "ACTIVE"}, request, status=201)


async def delete_profile(request: Request) -> Response:
    ctx, control = _control(request)
    control.delete_profile(ctx, request.path_params["identifier"])
    return _json({}, request)


async def tag_resource(request: Request) -> Response:
    ctx, control = _control(request)
    body = await decoded_body(request, model_decoder(TagResourceIn, coral_message))
    control.tag(ctx, body.resourceARN, {t.key: t.value for t in body.tags})
    return _json({}, request)


async def untag_resource(request: Request) -> Response:
    ctx, control = _control(request)
    body = await decoded_body(request, model_decoder(UntagResourceIn, coral_message))
    control.untag(ctx, body.resourceARN, body.tagKeys)
    return _json({}, request)


async def list_tags(request: Request) -> Response:
    ctx, control = _control(request)
    body = await decoded_body(request, model_decoder(ResourceIn, coral_message))
    tags = control.tags(ctx, body.resourceARN)
    return _json({"tags": [{"key": k, "value": v} for k, v in tags.items()]}, request)


def coral_enum(field: str, value: str, allowed: str) -> str:
    return coral_value_error(field, value, f"Member must satisfy enum value set: [{allowed}]")
