"""`cachepoint node`: engines with their own snapshot store, behind the internal API (`wire.py`).

A node is one replica of every engine in its configuration. Gateways plan the cache (their directory says
which prefixes exist and that this node holds their bytes); the node restores, prefills, keeps the new
snapshots and streams the engine's events back. Nothing is served without the cluster secret.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from cachepoint.cluster.snapshots import NodeSnapshots
from cachepoint.cluster.wire import (
    GENERATE,
    HEALTH,
    WireError,
    authorized,
    event_to_wire,
    job_from_wire,
    restore_ref,
)
from cachepoint.engine.protocol import GenerateJob, Prefilled, Runner, Snapshot

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 16 << 20


@dataclass
class NodeEngines:
    """What a node serves: a runner and a fingerprint per engine name, and its snapshots."""

    name: str
    runners: Mapping[str, Runner]
    fingerprints: Mapping[str, str]
    snapshots: NodeSnapshots
    max_queued_jobs: int = 64

    @property
    def load(self) -> int:
        return sum(r.num_jobs for r in self.runners.values())

    def health(self) -> dict[str, Any]:
        self.snapshots.sweep()
        return {
            "node": self.name,
            "load": self.load,
            "snapshots": self.snapshots.num_snapshots,
            "cached_bytes": self.snapshots.num_bytes,
            "engines": dict(self.fingerprints),
        }

    def close(self) -> None:
        for runner in self.runners.values():
            runner.close()


def create_node_app(engines: NodeEngines, secret: str) -> Starlette:
    async def health(request: Request) -> Response:
        if not authorized(request.headers.get("authorization"), secret):
            return _error(401, "unauthorized", "the cluster secret is missing or wrong")
        return JSONResponse(engines.health())

    async def generate(request: Request) -> Response:
        if not authorized(request.headers.get("authorization"), secret):
            return _error(401, "unauthorized", "the cluster secret is missing or wrong")
        try:
            body = json.loads(await _body(request))
            ref, restore_tokens = restore_ref(body)
            restore = _restore(engines.snapshots, ref, body, restore_tokens)
            if isinstance(restore, Response):
                return restore
            node_job = job_from_wire(body, restore)
        except (WireError, ValueError) as error:
            return _error(400, "bad-job", str(error))
        runner = engines.runners.get(node_job.engine)
        if runner is None:
            return _error(404, "unknown-engine", f"this node serves {sorted(engines.runners)}")
        if runner.num_jobs >= engines.max_queued_jobs:
            return _error(503, "busy", f"{runner.num_jobs} jobs queued")
        return StreamingResponse(_events(runner, node_job.job, engines.snapshots), media_type="application/x-ndjson")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        engines.close()

    return Starlette(routes=[Route(HEALTH, health), Route(GENERATE, generate, methods=["POST"])], lifespan=lifespan)


def _restore(snapshots: NodeSnapshots, ref: str | None, body: Any, num_tokens: int) -> Snapshot | Response | None:
    """The snapshot a job restores, checked against the job's tokens; a 409 says it cannot be."""
    if ref is None:
        return None
    held = snapshots.get(ref)
    if held is None:
        return _error(409, "snapshot-lost", f"snapshot {ref} is not held here (evicted, expired or a restart)")
    tokens = body.get("tokens") if isinstance(body, Mapping) else None
    wanted = tokens[:num_tokens] if isinstance(tokens, list) else None
    if wanted is None or len(held.tokens) < num_tokens or held.tokens[:num_tokens].tolist() != wanted:
        return _error(409, "token-mismatch", f"snapshot {ref} holds other tokens")
    return held.snapshot


async def _events(runner: Runner, job: GenerateJob, snapshots: NodeSnapshots) -> AsyncIterator[bytes]:
    try:
        async with aclosing(runner.stream(job)) as events:
            async for event in events:
                refs: tuple[str, ...] = ()
                if isinstance(event, Prefilled):
                    refs = tuple(snapshots.put(s, job.tokens) for s in event.snapshots)
                yield (json.dumps(event_to_wire(event, refs)) + "\n").encode()
    except Exception as error:  # the stream has started: the error travels in it
        log.exception("node job failed")
        yield (json.dumps({"error": {"kind": type(error).__name__, "message": str(error)[:500]}}) + "\n").encode()


async def _body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise WireError(f"a job is at most {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, kind: str, message: str) -> Response:
    return JSONResponse({"error": {"kind": kind, "message": message}}, status_code=status)
