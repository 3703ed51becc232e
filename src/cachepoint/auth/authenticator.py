"""Who is calling: SigV4 or bearer tokens on the Bedrock paths, x-api-key or bearer on /v1, and the
operator's token on the operator endpoints.

Modes:
- `strict`: every request must carry credentials known to the config (`[auth.credentials]` access keys with
  their secret and account; `[auth.tokens]` bearer tokens / Anthropic keys → account). SigV4 is verified.
- `dev` (default, loopback only): any credentials are accepted without checking, but the access key or token
  still decides the account, so caches, logs and profiles stay separate per key.

Authentication runs in two steps so that a request is judged before its body is read: `from_headers`
checks everything the headers carry (key known, Region known, date fresh; tokens completely), and
`with_body` checks a SigV4 signature, which covers the body. Unknown Regions are refused in both
modes: a Region names per-Region state (caches, log folders, metric labels), so it must be bounded.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from cachepoint.auth.sigv4 import ReceivedRequest, Scope, Secret, check_headers, check_signature
from cachepoint.errors import AuthError, InvalidSignatureError, MissingTokenError, UnrecognizedClientError

MODES = ("dev", "strict")
_SCOPE = re.compile(r"Credential=([^/,\s]{1,128})/\d{8}/([a-z0-9-]{1,64})/")


@dataclass(frozen=True)
class AuthSettings:
    mode: str = "dev"
    credentials: Mapping[str, Secret] = field(default_factory=dict)
    tokens: Mapping[str, str] = field(default_factory=dict)  # bearer token / API key → account
    operator_tokens: Collection[str] = ()  # bearer tokens for /metrics, /dashboard/data, /cachepoint/*
    skew_s: int = 300
    allow_dev_mode_on_network: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"auth mode must be one of {MODES}")
        accounts = [s.account_id for s in self.credentials.values()] + list(self.tokens.values())
        for account in accounts:
            if not (account.isdigit() and len(account) == 12):
                raise ValueError(f"[auth] accounts must be 12-digit account IDs, not {account!r}")


@dataclass(frozen=True)
class Identity:
    principal: str  # for logs: the access key ID, or a token's fingerprint; never a secret
    region: str
    account_id: str
    pending: Scope | None = None  # a SigV4 signature still to check against the body

    @property
    def access_key(self) -> str | None:
        return self.pending.access_key if self.pending else None


def fingerprint(token: str) -> str:
    """A stable, non-reversible name for a bearer token or API key."""
    return "token-" + hashlib.sha256(token.encode()).hexdigest()[:16]


class Authenticator:
    def __init__(
        self,
        settings: AuthSettings,
        default_region: str,
        dev_account: Callable[[str | None], str],
        regions: Collection[str] = (),
    ) -> None:
        self.settings = settings
        self.default_region = default_region
        self._dev_account = dev_account
        self._regions = frozenset(regions) | {default_region}

    @property
    def strict(self) -> bool:
        return self.settings.mode == "strict"

    def from_headers(self, request: ReceivedRequest, now_s: float) -> Identity:
        """The Bedrock paths, judged on headers alone."""
        authorization = (request.header("authorization") or "").strip()
        if authorization.startswith("AWS4-HMAC-SHA256"):
            return self._sigv4(request, now_s)
        if authorization.lower().startswith("bearer "):
            return self._token(authorization[7:].strip(), UnrecognizedClientError())
        if self.strict:
            raise MissingTokenError()
        return Identity("anonymous", self.default_region, self._dev_account(None))

    def with_body(self, request: ReceivedRequest, identity: Identity) -> Identity:
        if identity.pending is None:
            return identity
        check_signature(request, identity.pending)
        return Identity(identity.principal, identity.region, identity.account_id)

    def anthropic(self, request: ReceivedRequest) -> Identity:
        authorization = (request.header("authorization") or "").strip()
        key = request.header("x-api-key") or (
            authorization[7:].strip() if authorization.lower().startswith("bearer ") else None
        )
        if key is None:
            if self.strict:
                raise AuthError("x-api-key header is required")
            return Identity("anonymous", self.default_region, self._dev_account(None))
        return self._token(key, AuthError("invalid x-api-key"))

    def operator(self, request: ReceivedRequest) -> None:
        """Operator endpoints: open in dev mode (loopback only), a configured operator token in strict mode."""
        if not self.strict:
            return
        authorization = (request.header("authorization") or "").strip()
        token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
        if not token or token not in self.settings.operator_tokens:
            raise AuthError("This endpoint requires an operator token ([auth] operator_tokens).")

    def _sigv4(self, request: ReceivedRequest, now_s: float) -> Identity:
        if self.strict:
            scope = check_headers(request, self.settings.credentials.get, now_s, self.settings.skew_s)
            self._check_region(scope.region)
            return Identity(scope.access_key, scope.region, scope.account_id, pending=scope)
        match = _SCOPE.search(request.header("authorization") or "")  # dev mode: read the scope, verify nothing
        access_key, region = (match[1], match[2]) if match else (None, self.default_region)
        self._check_region(region)
        return Identity(access_key or "anonymous", region, self._dev_account(access_key))

    def _check_region(self, region: str) -> None:
        if region not in self._regions:
            raise InvalidSignatureError(f"Credential should be scoped to a valid region, not '{region[:64]}'. ")

    def _token(self, token: str, unknown: Exception) -> Identity:
        if not self.strict:
            return Identity(fingerprint(token), self.default_region, self._dev_account(token))
        account = self.settings.tokens.get(token)
        if account is None:
            raise unknown
        return Identity(fingerprint(token), self.default_region, account)
