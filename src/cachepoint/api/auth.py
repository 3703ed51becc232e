"""The gate every request passes first (pure ASGI middleware). In order, cheapest first:

1. `/health` passes; operator endpoints (/metrics, /dashboard/data, /cachepoint/*) need the operator's
   token in strict mode (the /dashboard page itself is static and shows nothing until it has one);
2. authenticate from the headers alone (SigV4 key, scope Region and date; tokens completely), so a
   stranger's body is never read: the request is refused and the connection closed;
3. admit at most `max_concurrent_per_account` requests per account at once (ThrottlingException beyond);
4. read the body within `max_body_bytes` and `body_timeout_s` (a slow body cannot hold a slot forever);
5. check a SigV4 signature against the body, then replay the buffered body to the app.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cachepoint.api.errors import ANTHROPIC_PREFIX, ANTHROPIC_SHAPED, anthropic_error, bedrock_error
from cachepoint.auth.authenticator import Authenticator, Identity
from cachepoint.auth.sigv4 import ReceivedRequest
from cachepoint.clock import Clock
from cachepoint.errors import CachepointError, RequestTimeoutError, RequestTooLargeError, ThrottlingError
from cachepoint.settings import Limits

OPEN_PATHS = ("/health", "/dashboard")  # exact paths: the static page and the liveness probe
OPERATOR_PREFIXES = ("/metrics", "/dashboard/", "/cachepoint/")


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
            if self._active[account] <= 0:
                del self._active[account]  # no entry per account that has ever called


class AuthMiddleware:
    def __init__(self, app: ASGIApp, authenticator: Authenticator, limits: Limits, clock: Clock,
                 on_throttle: Callable[[Identity], None] = lambda identity: None) -> None:  # fmt: skip
        self.app = app
        self.authenticator = authenticator
        self.limits = limits
        self.clock = clock
        self.gate = AccountGate(limits.max_concurrent_per_account)
        self.on_throttle = on_throttle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if path.startswith(OPERATOR_PREFIXES):
            await self._operator(scope, receive, send)
            return
        try:
            identity = self._from_headers(scope)
        except CachepointError as error:
            await _reject(scope, receive, send, error, close=True)
            return
        await self._admitted(scope, receive, send, identity)

    async def _admitted(self, scope: Scope, receive: Receive, send: Send, identity: Identity) -> None:
        try:
            self.gate.enter(identity.account_id)
        except ThrottlingError as error:
            self.on_throttle(identity)
            await _reject(scope, receive, send, error, close=True)
            return
        try:
            try:
                body = await _read_body(receive, self.limits.max_body_bytes, self.limits.body_timeout_s)
                identity = self.authenticator.with_body(_received(scope, body), identity)
            except CachepointError as error:
                await _reject(scope, receive, send, error, close=True)
                return
            scope.setdefault("state", {})["identity"] = identity
            await self.app(scope, _replay(body, receive), send)
        finally:
            self.gate.leave(identity.account_id)

    async def _operator(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            self.authenticator.operator(_received(scope, b""))
        except CachepointError as error:
            await _reject(scope, receive, send, error, close=True)
            return
        await self.app(scope, receive, send)

    def _from_headers(self, scope: Scope) -> Identity:
        received = _received(scope, b"")
        if scope["path"].startswith(ANTHROPIC_PREFIX):
            return self.authenticator.anthropic(received)
        return self.authenticator.from_headers(received, self.clock.now_s())


def _received(scope: Scope, body: bytes) -> ReceivedRequest:
    raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
    return ReceivedRequest(scope["method"], raw_path, scope.get("query_string", b"").decode("latin-1"), headers, body)


async def _read_body(receive: Receive, limit: int, timeout_s: float) -> bytes:
    try:
        async with asyncio.timeout(timeout_s):
            return await _read_chunks(receive, limit)
    except TimeoutError:
        raise RequestTimeoutError(f"The request body was not received within {timeout_s:g} seconds.") from None


async def _read_chunks(receive: Receive, limit: int) -> bytes:
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


async def _reject(scope: Scope, receive: Receive, send: Send, error: CachepointError, *, close: bool) -> None:
    """Answer without reading the rest of the body; `Connection: close` so the unread bytes end with it."""
    request_id = str(scope.get("state", {}).get("request_id", "unknown"))
    render = anthropic_error if scope["path"].startswith(ANTHROPIC_SHAPED) else bedrock_error
    response = render(error, request_id)
    if close:
        response.headers["connection"] = "close"
    await response(scope, receive, send)


def identity_of(request: Request) -> Identity:
    identity: Identity = request.scope["state"]["identity"]
    return identity
