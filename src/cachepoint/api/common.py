"""Request plumbing shared by every route: the services container, call context, JSON bodies."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeVar

import pydantic
from starlette.requests import Request

from cachepoint.api.auth import identity_of
from cachepoint.api.errors import request_id_of
from cachepoint.auth.authenticator import Authenticator
from cachepoint.clock import Clock
from cachepoint.errors import ValidationError
from cachepoint.service import InferenceService
from cachepoint.settings import Settings
from cachepoint.telemetry.recorder import Telemetry
from cachepoint.types import AccountId, CallContext, RegionId, RequestId

MALFORMED = "Malformed input request, please reformat your input and try again."
Model = TypeVar("Model", bound=pydantic.BaseModel)


@dataclass(frozen=True)
class AppServices:
    settings: Settings
    inference: InferenceService
    clock: Clock
    telemetry: Telemetry
    authenticator: Authenticator


def services_of(request: Request) -> AppServices:
    services: AppServices = request.app.state.services
    return services


def call_context(request: Request) -> CallContext:
    identity = identity_of(request)
    return CallContext(
        account_id=AccountId(identity.account_id),
        region=RegionId(identity.region),
        request_id=RequestId(request_id_of(request)),
        access_key=identity.access_key,
    )


async def json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError(MALFORMED) from None


def parse(model: type[Model], data: Any, describe: Any) -> Model:
    """Validate `data` against a wire model; `describe` turns pydantic's errors into the dialect's text."""
    if not isinstance(data, dict):
        raise ValidationError(MALFORMED)
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as error:
        raise ValidationError(describe(error)) from None
