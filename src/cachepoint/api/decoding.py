"""Request bodies → `Decoded` values. Everything here may run in a decoding process, so each decoder is
a module-level function of the raw bytes (picklable) and touches nothing but its input.

A body that is not JSON fails outright; a body that is JSON but breaks the dialect's rules comes back
as `Decoded(rejected=...)` carrying the parsed body, so the failure is logged with what was sent.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import pydantic

from cachepoint.api.jsonguard import MALFORMED, decode_json
from cachepoint.errors import CachepointError, ValidationError
from cachepoint.service.calls import Decoded
from cachepoint.types import Prompt, SamplingParams

Model = TypeVar("Model", bound=pydantic.BaseModel)
Describe = Callable[[pydantic.ValidationError], str]


def parse(model: type[Model], data: Any, describe: Describe) -> Model:
    """Validate `data` against a wire model; `describe` turns pydantic's errors into the dialect's text."""
    if not isinstance(data, dict):
        raise ValidationError(MALFORMED)
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as error:
        raise ValidationError(describe(error)) from None


def decode_with(translate: Callable[[Any], Decoded], raw: bytes) -> Decoded:
    data = decode_json(raw)
    try:
        return translate(data)
    except CachepointError as error:
        named = data.get("model") if isinstance(data, dict) else None
        return Decoded(Prompt(), SamplingParams(), body=data, model=named if isinstance(named, str) else None,
                       rejected=error)  # fmt: skip


def decoder(translate: Callable[[Any], Decoded]) -> Callable[[bytes], Decoded]:
    """`translate` must be a module-level function, so the decoder can be sent to a worker process."""
    return partial(decode_with, translate)


def parse_json_model(model: type[Model], describe: Describe, raw: bytes) -> Model:
    return parse(model, decode_json(raw), describe)


def model_decoder(model: type[Model], describe: Describe) -> Callable[[bytes], Model]:
    return partial(parse_json_model, model, describe)
