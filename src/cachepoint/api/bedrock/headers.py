"""InvokeModel request headers that Bedrock validates and echoes on the response (both Invoke operations)."""

from __future__ import annotations

from starlette.requests import Request

from cachepoint.api.validation import coral_value_error
from cachepoint.errors import ValidationError

# InvokeModel request headers that Bedrock echoes on the response: header → (member name, allowed values)
ECHOED = {
    "X-Amzn-Bedrock-PerformanceConfig-Latency": ("performanceConfigLatency", ("standard", "optimized")),
    "X-Amzn-Bedrock-Service-Tier": ("serviceTier", ("priority", "default", "flex", "reserved")),
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
