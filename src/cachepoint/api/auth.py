"""Who is calling and from which Region, read from the credentials a client sends.

Identification only: signature verification is a separate step. A SigV4 `Credential=` scope gives
the access key and the source Region; a bearer token or an Anthropic key gives the key, with the
listener's configured Region.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.datastructures import Headers

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([a-z0-9-]+)/[a-z0-9-]+/aws4_request")


@dataclass(frozen=True)
class Identity:
    access_key: str | None
    region: str


def identify(headers: Headers, default_region: str) -> Identity:
    authorization = headers.get("authorization", "")
    if match := _CREDENTIAL.search(authorization):
        return Identity(match[1], match[2])
    if authorization.lower().startswith("bearer "):
        return Identity(authorization[7:].strip() or None, default_region)
    return Identity(headers.get("x-api-key"), default_region)
