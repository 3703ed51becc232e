"""InvokeModel request headers: those Bedrock validates and echoes on the response (both Invoke operations),
and the request metadata that feeds the invocation log's `requestMetadata`."""

from __future__ import annotations

import json
import re

from starlette.requests import Request

from cachepoint.api.validation import coral_value_error
from cachepoint.errors import ValidationError

SERVICE_TIER_HEADER = "X-Amzn-Bedrock-Service-Tier"
# InvokeModel request headers that Bedrock echoes on the response: header → (member name, allowed values)
ECHOED = {
    "X-Amzn-Bedrock-PerformanceConfig-Latency": ("performanceConfigLatency", ("standard", "optimized")),
    SERVICE_TIER_HEADER: ("serviceTier", ("priority", "default", "flex", "reserved")),
}


def echoed_headers(request: Request) -> dict[str, str]:
    echoed = {}
    for header, (member, allowed) in ECHOED.items():
        value = request.headers.get(header)
        if value is None:
            continue
        if value not in allowed:
            constraint = f"Member must satisfy enum value set: [{', '.join(allowed)}]"
            raise ValidationError(coral_value_error(member, value, constraint))
        echoed[header] = value
    return echoed


METADATA_HEADER = "X-Amzn-Bedrock-Request-Metadata"
_METADATA = re.compile(r"[a-zA-Z0-9\s:_@$#=/+,\-.]{0,256}")  # botocore's RequestMetadata key and value pattern
BAD_METADATA = (
    f"The {METADATA_HEADER} header must be a JSON object of 1 to 16 string pairs: keys of 1 to 256 and values of "
    "0 to 256 characters from [a-zA-Z0-9 :_@$#=/+,-.]."
)


def request_metadata(request: Request) -> dict[str, str] | None:
    """InvokeModel's request metadata (a JSON object in a header, as botocore sends it), checked as Converse's."""
    raw = request.headers.get(METADATA_HEADER)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise ValidationError(BAD_METADATA) from None
    if not isinstance(value, dict) or not 1 <= len(value) <= 16:
        raise ValidationError(BAD_METADATA)
    for key, item in value.items():
        if not (isinstance(item, str) and key and _METADATA.fullmatch(key) and _METADATA.fullmatch(item)):
            raise ValidationError(BAD_METADATA)
    return value
