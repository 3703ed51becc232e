"""The gate every API request passes first (pure ASGI middleware):

1. read the body, refusing more than `max_body_bytes` (nothing is parsed before this bound);
2. authenticate (SigV4 / bearer on Bedrock paths, x-api-key / bearer on /v1) → `scope["state"]["identity"]`;
3. admit at most `max_concurrent_per_account` requests per account at once (ThrottlingException beyond);
4. replay the buffered body to the app.
Operator endpoints (/health, /metrics, /dashboard, /cachepoint/*) are not gated: bind them to loopback.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cachepoint.api.errors import ANTHROPIC_PREFIX, anthropic_error, bedrock_error
from cachepoint.auth.authenticator import Authenticator, Identity
from cachepoint.auth.sigv4 import ReceivedRequest
from cachepoint.clock import Clock
from cachepoint.errors import CachepointError, RequestTooLargeError, ThrottlingError
from cachepoint.settings import Limits

OPEN_PREFIXES = ("/health", "/metrics", "/dashboard", "/cachepoint/")


class AccountGate:
    """Counts in-flight requests per account (event-loop thread only; the lock guards tests' threads)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._active: Counter[str] = Counter()
        self._lock = threading.Lock()

    def enter(self, account: str) -> None:
        with self._lock:
            if self._active[account] >= self.limit:
                raise ThrottlingError()
            self._active[account] += 1

    def leave(self, account: str) -> None:
        with self._lock:
            self._active[account] -= 1


class AuthMiddleware:
    def __init__(self, app: ASGIApp, authenticator: Authenticator, limits: Limits, clock: Clock,
                 on_throttle: Callable[[Scope, Identity], None] = lambda scope, identity: None) -> None:  # fmt: skip
        self.app = app
        self.authenticator = authenticator
        self.limits = limits
        self.clock = clock
        self.gate = AccountGate(limits.max_concurrent_per_account)
        self.on_throttle = on_throttle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        try:
            body = await _read_body(receive, self.limits.max_body_bytes)
            identity = self._authenticate(scope, body)
            self.gate.enter(identity.account_id)
        except CachepointError as error:
            if isinstance(error, ThrottlingError):
                self.on_throttle(scope, identity)
            await _reject(scope, receive, send, error)
            return
        scope.setdefault("state", {})["identity"] = identity
        try:
            await self.app(scope, _replay(body, receive), send)
        finally:
            self.gate.leave(identity.account_id)

    def _authenticate(self, scope: Scope, body: bytes) -> Identity:
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
        received = ReceivedRequest(
            scope["method"], raw_path, scope.get("query_string", b"").decode("latin-1"), headers, body
        )
        if scope["path"].startswith(ANTHROPIC_PREFIX):
            return self.authenticator.anthropic(received)
        return self.authenticator.bedrock(received, self.clock.now_s())


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestTooLargeError(f"The request body exceeds the maximum of {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, original: Receive) -> Receive:
    """The buffered body once, then the real channel (so a client's disconnect still reaches streams)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()

    return receive


async def _reject(scope: Scope, receive: Receive, send: Send, error: CachepointError) -> None:
    request_id = str(scope.get("state", {}).get("request_id", "unknown"))
    render = anthropic_error if scope["path"].startswith(ANTHROPIC_PREFIX) else bedrock_error
    await render(error, request_id)(scope, receive, send)


def identity_of(request: Request) -> Identity:
    identity: Identity = request.scope["state"]["identity"]
    return identity
