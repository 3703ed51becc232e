"""Helpers every Bedrock operation shares: resolving an Anthropic-bodied model, parsing InvokeModel
bodies, and preparing a call in the caller's context."""

from __future__ import annotations

from starlette.requests import Request

from cachepoint.api.anthropic.schema import InvokeBody
from cachepoint.api.common import call_context, parse, services_of
from cachepoint.api.validation import json_schema_message
from cachepoint.errors import ValidationError
from cachepoint.models.ids import parse_model_identifier
from cachepoint.models.resolve import resolve_spec
from cachepoint.models.spec import ModelSpec
from cachepoint.service import PreparedCall
from cachepoint.types import Prompt, SamplingParams


def require_anthropic_spec(request: Request, model_id: str) -> ModelSpec:
    spec = resolve_spec(parse_model_identifier(model_id), services_of(request).inference.catalog)
    if not spec.speaks_anthropic:
        raise ValidationError(f"InvokeModel bodies are supported for Anthropic models; use Converse for {spec.name}.")
    return spec


def parse_invoke_body(data: object) -> InvokeBody:
    body = parse(InvokeBody, data, json_schema_message)
    if body.cache_control is not None:
        raise ValidationError(
            "Malformed input request: #: extraneous key [cache_control] is not permitted, "
            "please reformat your input and try again."
        )
    return body


def bedrock_call(request: Request, model_id: str, prompt: Prompt, sampling: SamplingParams) -> PreparedCall:
    return services_of(request).inference.prepare(call_context(request), model_id, prompt, sampling)
