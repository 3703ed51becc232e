"""Parsing the model identifier of a request: bare ID, system-profile ID, or one of three ARN kinds.

Resolution to a catalog row happens from the *base* model ID, never by sniffing substrings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from cachepoint.errors import ValidationError

GEO_PREFIXES = ("us-gov", "us", "eu", "apac", "jp", "au", "ca", "global")
INVALID_IDENTIFIER = "The provided model identifier is invalid."

_ARN = re.compile(
    r"^arn:(?P<partition>aws|aws-us-gov|aws-cn|aws-iso|aws-iso-b):bedrock:(?P<region>[a-z0-9-]+):"
    r"(?P<account>\d{12})?:(?P<kind>foundation-model|inference-profile|application-inference-profile)/"
    r"(?P<resource>.+)$"
)
_BASE_ID = re.compile(r"^[a-z0-9-]+\.[a-zA-Z0-9._:-]+$")
_APP_PROFILE_ID = re.compile(r"^[a-z0-9]{12}$")


class RefKind(StrEnum):
    FOUNDATION_MODEL = "foundation-model"
    SYSTEM_PROFILE = "inference-profile"
    APPLICATION_PROFILE = "application-inference-profile"


@dataclass(frozen=True)
class ModelRef:
    """What the caller named. `model_id` is the base model for the first two kinds; for an
    application profile it is the profile's 12-character ID, resolved later from the profile store."""

    raw: str
    kind: RefKind
    model_id: str
    geo: str | None = None
    arn_region: str | None = None
    arn_account: str | None = None

    @property
    def profile_id(self) -> str | None:
        if self.kind is RefKind.SYSTEM_PROFILE:
            return f"{self.geo}.{self.model_id}"
        if self.kind is RefKind.APPLICATION_PROFILE:
            return self.model_id
        return None


def parse_model_identifier(raw: str) -> ModelRef:
    if not raw or len(raw) > 2048:
        raise ValidationError(INVALID_IDENTIFIER)
    match = _ARN.match(raw)
    if match:
        return _from_arn(raw, match)
    return _from_id(raw, raw, arn_region=None, arn_account=None)


def _from_arn(raw: str, match: re.Match[str]) -> ModelRef:
    kind = RefKind(match["kind"])
    region, account, resource = match["region"], match["account"], match["resource"]
    if kind is RefKind.APPLICATION_PROFILE:
        if not _APP_PROFILE_ID.match(resource):
            raise ValidationError(INVALID_IDENTIFIER)
        return ModelRef(raw, kind, resource, arn_region=region, arn_account=account)
    ref = _from_id(raw, resource, arn_region=region, arn_account=account)
    if (ref.kind is RefKind.SYSTEM_PROFILE) != (kind is RefKind.SYSTEM_PROFILE):
        raise ValidationError(INVALID_IDENTIFIER)
    return ref


def _from_id(raw: str, ident: str, *, arn_region: str | None, arn_account: str | None) -> ModelRef:
    geo, _, rest = ident.partition(".")
    if geo in GEO_PREFIXES and _BASE_ID.match(rest):
        return ModelRef(raw, RefKind.SYSTEM_PROFILE, rest, geo, arn_region, arn_account)
    if _BASE_ID.match(ident):
        return ModelRef(raw, RefKind.FOUNDATION_MODEL, ident, None, arn_region, arn_account)
    raise ValidationError(INVALID_IDENTIFIER)
