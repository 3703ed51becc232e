"""Who is calling: SigV4 or bearer tokens on the Bedrock paths, x-api-key or bearer on /v1.

Modes:
- `strict`: every request must carry credentials known to the config (`[auth.credentials]` access keys with
  their secret and account; `[auth.tokens]` bearer tokens / Anthropic keys → account). SigV4 is verified.
- `dev` (default, loopback only): any credentials are accepted without checking, but the access key or token
  still decides the account, so caches, logs and profiles stay separate per key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cachepoint.auth.sigv4 import ReceivedRequest, Secret, verify
from cachepoint.errors import AuthError, MissingTokenError, UnrecognizedClientError

MODES = ("dev", "strict")
_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([a-z0-9-]+)/")


@dataclass(frozen=True)
class AuthSettings:
    mode: str = "dev"
    credentials: Mapping[str, Secret] = field(default_factory=dict)
    tokens: Mapping[str, str] = field(default_factory=dict)  # bearer token / API key → account
    skew_s: int = 300
    allow_dev_mode_on_network: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"auth mode must be one of {MODES}")


@dataclass(frozen=True)
class Identity:
    access_key: str | None
    region: str
    account_id: str


class Authenticator:
    def __init__(self, settings: AuthSettings, default_region: str, dev_account: Callable[[str | None], str]) -> None:
        self.settings = settings
        self.default_region = default_region
        self._dev_account = dev_account

    @property
    def strict(self) -> bool:
        return self.settings.mode == "strict"

    def bedrock(self, request: ReceivedRequest, now_s: float) -> Identity:
        authorization = (request.header("authorization") or "").strip()
        if authorization.startswith("AWS4-HMAC-SHA256"):
            return self._sigv4(request, now_s)
        if authorization.lower().startswith("bearer "):
            return self._token(authorization[7:].strip(), UnrecognizedClientError())
        if self.strict:
            raise MissingTokenError()
        return Identity(None, self.default_region, self._dev_account(None))

    def anthropic(self, request: ReceivedRequest) -> Identity:
        authorization = (request.header("authorization") or "").strip()
        key = request.header("x-api-key") or (
            authorization[7:].strip() if authorization.lower().startswith("bearer ") else None
        )
        if key is None:
            if self.strict:
                raise AuthError("x-api-key header is required")
            return Identity(None, self.default_region, self._dev_account(None))
        return self._token(key, AuthError("invalid x-api-key"))

    def _sigv4(self, request: ReceivedRequest, now_s: float) -> Identity:
        if self.strict:
            verified = verify(request, self.settings.credentials.get, now_s, self.settings.skew_s)
            return Identity(verified.access_key, verified.region, verified.account_id)
        match = _SCOPE.search(request.header("authorization") or "")  # dev mode: read the scope, verify nothing
        access_key, region = (match[1], match[2]) if match else (None, self.default_region)
        return Identity(access_key, region, self._dev_account(access_key))

    def _token(self, token: str, unknown: Exception) -> Identity:
        if not self.strict:
            return Identity(token, self.default_region, self._dev_account(token))
        account = self.settings.tokens.get(token)
        if account is None:
            raise unknown
        return Identity(token, self.default_region, account)
