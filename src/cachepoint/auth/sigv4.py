"""SigV4 (AWS4-HMAC-SHA256, header form) verification with the standard library, from exactly what was
received: the raw path, the raw query, the signed headers as sent, and the raw body.

Canonical URI: the raw path with dot segments removed, percent-encoded AGAIN (all but unreserved and
'/'), as every service but S3 does: a received `%3A` becomes `%253A`.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from cachepoint.errors import IncompleteSignatureError, InvalidSignatureError, UnrecognizedClientError

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "bedrock"
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<ak>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/(?P<service>[a-z0-9-]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=(?P<sig>[0-9a-f]{64})$"
)
_UNRESERVED = "-_.~"


@dataclass(frozen=True)
class Secret:
    secret_key: str
    account_id: str


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    raw_path: str
    raw_query: str
    headers: Sequence[tuple[str, str]]  # lower-case names, as received, repeats kept
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k == name]
        return ",".join(values) if values else None


@dataclass(frozen=True)
class Verified:
    access_key: str
    region: str
    account_id: str


@dataclass(frozen=True)
class Scope:
    """What the Authorization header claims, checked as far as headers allow (before the body is read)."""

    access_key: str
    region: str
    account_id: str
    secret: Secret
    match: re.Match[str] = field(repr=False)


def check_headers(
    request: ReceivedRequest, lookup: Callable[[str], Secret | None], now_s: float, skew_s: int = 300
) -> Scope:
    """Everything but the signature itself: header shape, service, date and skew, a known access key."""
    match = _AUTH.match((request.header("authorization") or "").strip())
    if match is None:
        raise IncompleteSignatureError("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'.")
    _check_scope_and_time(match, request.header("x-amz-date") or "", now_s, skew_s)
    secret = lookup(match["ak"])
    if secret is None:
        raise UnrecognizedClientError()
    signed = match["signed"].split(";")
    if "host" not in signed or any(request.header(h) is None for h in signed):
        raise IncompleteSignatureError("SignedHeaders must include host, and every signed header must be present.")
    return Scope(match["ak"], match["region"], secret.account_id, secret, match)


def check_signature(request: ReceivedRequest, scope: Scope) -> Verified:
    """The signature over the whole request, body included."""
    match = scope.match
    _check_payload_hash(request)
    credential_scope = f"{match['date']}/{match['region']}/{match['service']}/aws4_request"
    canonical = canonical_request(request, match["signed"].split(";"))
    amz_date = request.header("x-amz-date") or ""
    to_sign = "\n".join([ALGORITHM, amz_date, credential_scope, hashlib.sha256(canonical.encode()).hexdigest()])
    expected = hmac.new(
        _signing_key(scope.secret.secret_key, match["date"], match["region"]), to_sign.encode(), hashlib.sha256
    )
    if not hmac.compare_digest(expected.hexdigest(), match["sig"]):
        raise InvalidSignatureError(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
            "Access Key and signing method. Consult the service documentation for details."
        )
    return Verified(scope.access_key, scope.region, scope.account_id)


def verify(
    request: ReceivedRequest, lookup: Callable[[str], Secret | None], now_s: float, skew_s: int = 300
) -> Verified:
    return check_signature(request, check_headers(request, lookup, now_s, skew_s))


def _check_scope_and_time(match: re.Match[str], amz_date: str, now_s: float, skew_s: int) -> None:
    if match["service"] != SERVICE:
        raise IncompleteSignatureError(f"Credential should be scoped to correct service: '{SERVICE}'.")
    try:
        signed_s = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        raise IncompleteSignatureError("X-Amz-Date must be in the form YYYYMMDDTHHMMSSZ.") from None
    if amz_date[:8] != match["date"]:
        raise InvalidSignatureError(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP."
        )
    if signed_s < now_s - skew_s:
        raise InvalidSignatureError(
            f"Signature expired: {amz_date} is now earlier than {stamp(now_s - skew_s)} ({stamp(now_s)} - 5 min.)"
        )
    if signed_s > now_s + skew_s:
        raise InvalidSignatureError(
            f"Signature not yet current: {amz_date} is still later than {stamp(now_s + skew_s)} "
            f"({stamp(now_s)} + 5 min.)"
        )


def stamp(seconds: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(seconds))


def _check_payload_hash(request: ReceivedRequest) -> None:
    """A declared body hash must be the body's (UNSIGNED-PAYLOAD opts out of body signing)."""
    declared = request.header("x-amz-content-sha256")
    if declared not in (None, "UNSIGNED-PAYLOAD") and declared != hashlib.sha256(request.body).hexdigest():
        raise InvalidSignatureError("The provided 'x-amz-content-sha256' header does not match what was computed.")


def canonical_request(request: ReceivedRequest, signed: list[str]) -> str:
    headers = "".join(f"{name}:{_trim(request.header(name) or '')}\n" for name in signed)
    return "\n".join(
        [
            request.method.upper(),
            canonical_uri(request.raw_path),
            canonical_query(request.raw_query),
            headers,
            ";".join(signed),
            request.header("x-amz-content-sha256") or hashlib.sha256(request.body).hexdigest(),
        ]
    )


def canonical_uri(raw_path: str) -> str:
    segments: list[str] = []
    for segment in raw_path.split("/"):
        if segment == "..":
            segments = segments[:-1]
        elif segment != ".":
            segments.append(segment)
    path = "/".join(segments) or "/"
    return quote(path.encode("latin-1"), safe="/" + _UNRESERVED)


def canonical_query(raw_query: str) -> str:
    if not raw_query:
        return ""
    pairs = []
    for part in raw_query.split("&"):
        key, _, value = part.partition("=")
        pairs.append((_encode(unquote(key)), _encode(unquote(value))))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _encode(text: str) -> str:
    return quote(text, safe=_UNRESERVED)


def _trim(value: str) -> str:
    return " ".join(value.split())


def _signing_key(secret: str, date: str, region: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, SERVICE, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key
