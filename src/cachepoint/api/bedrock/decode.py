"""Bedrock Runtime bodies → canonical values (run off the event loop; see api/decoding.py)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cachepoint.api.anthropic import translate as anthropic
from cachepoint.api.anthropic.schema import InvokeBody
from cachepoint.api.bedrock import translate as converse
from cachepoint.api.bedrock.schema import ConverseRequest, CountTokensRequest, NovaInvokeBody
from cachepoint.api.decoding import decoder, parse
from cachepoint.api.jsonguard import MALFORMED, decode_json
from cachepoint.api.validation import coral_message, json_schema_message
from cachepoint.errors import ValidationError
from cachepoint.service.calls import Decoded
from cachepoint.types import SamplingParams


def _converse(data: Any) -> Decoded:
    body = parse(ConverseRequest, data, coral_message)
    sampling = converse.to_sampling(body.inferenceConfig, body.additionalModelRequestFields)
    tier = body.serviceTier.type if body.serviceTier is not None else None
    return Decoded(converse.to_prompt(body), sampling, data, service_tier=tier)


def _invoke(data: Any) -> Decoded:
    if is_nova_body(data):
        nova = parse(NovaInvokeBody, data, json_schema_message)
        return Decoded(converse.to_prompt(nova), converse.nova_sampling(nova.inferenceConfig), data, invoke_body="nova")
    body = parse_invoke_body(data)
    return Decoded(anthropic.to_prompt(body), anthropic.to_sampling(body), data)


def is_nova_body(data: Any) -> bool:
    """Nova's native body names no anthropic_version and carries its own schemaVersion or inferenceConfig; any
    other body is read as Anthropic's, whose errors then say what is missing."""
    if not isinstance(data, dict) or "anthropic_version" in data:
        return False
    return "schemaVersion" in data or "inferenceConfig" in data


def _count_tokens(data: Any) -> Decoded:
    body = parse(CountTokensRequest, data, coral_message)
    if body.input.converse is not None:
        return Decoded(converse.to_prompt(body.input.converse), SamplingParams(), data)
    if body.input.invokeModel is not None:
        raw = _base64_json(body.input.invokeModel.body)
        if is_nova_body(raw):
            nova = parse(NovaInvokeBody, raw, json_schema_message)
            return Decoded(converse.to_prompt(nova), SamplingParams(), data, invoke_body="nova")
        return Decoded(anthropic.to_prompt(parse_invoke_body(raw)), SamplingParams(), data)
    raise ValidationError(
        "1 validation error detected: Value null at 'input' failed to satisfy constraint: Member must not be null"
    )


def parse_invoke_body(data: Any) -> InvokeBody:
    body = parse(InvokeBody, data, json_schema_message)
    if body.cache_control is not None:  # automatic caching is the Anthropic API's; Bedrock's validator refuses it
        raise ValidationError("cache_control: Extra inputs are not permitted")
    return body


def _base64_json(text: str) -> Any:
    try:
        return decode_json(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError, json.JSONDecodeError):
        raise ValidationError(MALFORMED) from None


converse_body = decoder(_converse)
invoke_body = decoder(_invoke)
count_tokens_body = decoder(_count_tokens)
