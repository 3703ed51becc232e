"""The gateway's side of a `cachepoint node`: a `Runner` that sends jobs over the internal API, and its health.

Failures are typed for the service: `ReplicaUnavailable` (unreachable, refused, busy, died: before the first
event the call goes to another replica; after it, the answer continues there) or `SnapshotUnavailable` (the
node no longer holds the snapshot the plan restores: the call is planned again, `replica-lost`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from cachepoint.cache.plan import MissCause, SnapshotUnavailable
from cachepoint.cluster.wire import GENERATE, HEALTH, WireError, event_from_wire, job_to_wire
from cachepoint.engine.protocol import EngineEvent, GenerateJob, Prefilled, ReplicaUnavailable, TokenSource
from cachepoint.routing.replicas import Replica

CONNECT_TIMEOUT_S = 2.0
HEALTH_TIMEOUT_S = 1.0
_LOST = {"snapshot-lost": MissCause.REPLICA_LOST, "token-mismatch": MissCause.TOKEN_MISMATCH}


def node_url(name: str) -> str:
    """node://HOST:PORT → http://HOST:PORT"""
    return "http://" + name.removeprefix("node://")


class NodeRunner:
    def __init__(
        self, name: str, engine_name: str, tokenizer: TokenSource, secret: str, request_timeout_s: float = 600.0
    ) -> None:
        self.name = name
        self.engine_name = engine_name
        self._tokenizer = tokenizer
        self._url = node_url(name)
        self._headers = {"authorization": f"Bearer {secret}"}
        self._timeout = httpx.Timeout(request_timeout_s, connect=CONNECT_TIMEOUT_S)
        self._client: httpx.AsyncClient | None = None
        self._jobs = 0
        self._last_prefill: Prefilled | None = None

    @property
    def engine(self) -> TokenSource:
        return self._tokenizer

    @property
    def num_jobs(self) -> int:
        return self._jobs

    @property
    def last_prefill(self) -> Prefilled | None:
        return self._last_prefill

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:  # made on the event loop that uses it
            self._client = httpx.AsyncClient(timeout=self._timeout, headers=self._headers)
        return self._client

    async def stream(self, job: GenerateJob) -> AsyncGenerator[EngineEvent, None]:
        self._jobs += 1
        try:
            request = self._http().stream("POST", self._url + GENERATE, json=job_to_wire(self.engine_name, job))
            async with request as response:
                if response.status_code != 200:
                    raise self._refused(response.status_code, await response.aread())
                async for line in response.aiter_lines():
                    if not line:
                        continue
                    event = self._event(json.loads(line))
                    if isinstance(event, Prefilled):
                        self._last_prefill = event
                    yield event
        except (httpx.HTTPError, WireError, ValueError) as error:
            raise ReplicaUnavailable(self.name, f"{type(error).__name__}: {error}") from None
        finally:
            self._jobs -= 1

    def _event(self, line: Any) -> EngineEvent:
        if isinstance(line, dict) and "error" in line:
            detail = str(line["error"].get("message", "")) if isinstance(line["error"], dict) else ""
            raise ReplicaUnavailable(self.name, f"failed: {detail}")
        if not isinstance(line, dict):
            raise WireError("an event is a JSON object")
        return event_from_wire(line, self.name)

    def _refused(self, status: int, body: bytes) -> Exception:
        try:
            error = json.loads(body)["error"]
            kind, message = str(error["kind"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            kind, message = "http", body[:200].decode(errors="replace")
        if status == 409 and kind in _LOST:
            return SnapshotUnavailable(_LOST[kind], f"{self.name}: {message}")
        return ReplicaUnavailable(self.name, f"HTTP {status} {kind}: {message}")

    async def health(self) -> dict[str, Any]:
        """The node's health report; raises on any failure (the monitor counts them)."""
        response = await self._http().get(self._url + HEALTH, timeout=HEALTH_TIMEOUT_S)
        response.raise_for_status()
        report = response.json()
        if not isinstance(report, dict):
            raise ValueError("a health report is a JSON object")
        return report

    def close(self) -> None:
        self._client = None  # its connections close with the loop; nothing to wait for


def node_replica(name: str, engine_name: str, tokenizer: TokenSource, secret: str, timeout_s: float) -> Replica:
    return Replica(name, NodeRunner(name, engine_name, tokenizer, secret, timeout_s), holder=name)
