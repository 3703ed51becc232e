"""create_app(services) → the ASGI app. No globals: everything hangs off `app.state.services`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from importlib import resources

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from cachepoint.api.anthropic import routes as anthropic_routes
from cachepoint.api.bedrock.routes import runtime
from cachepoint.api.control import logging_config
from cachepoint.api.control import routes as control
from cachepoint.api.common import AppServices, services_of
from cachepoint.api.auth import AuthMiddleware
from cachepoint.api.errors import handle_error
from cachepoint.service.cluster import cluster_view
from cachepoint.engine.protocol import Runner
from cachepoint.errors import CachepointError


class RequestIdMiddleware:
    """Gives every request its ID before anything can fail, so errors carry it too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["request_id"] = str(uuid.uuid4())
        await self.app(scope, receive, send)


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def cache_stats(request: Request) -> Response:
    """cachepoint's own view of its cache: entries, bytes against the budget, removals by reason."""
    inference = services_of(request).inference
    engines = {
        f"{name}@{region}": _engine_stats(worker)
        for name, pool in inference.pools.items()
        for region, worker in pool.workers().items()
    }
    backends = {name: pool.backend.describe() for name, pool in inference.pools.items()}
    return JSONResponse({"cache": asdict(inference.cache.stats()), "engines": engines, "backends": backends})


def _engine_stats(worker: Runner) -> dict[str, object]:
    prefill = worker.last_prefill
    last = None
    if prefill is not None:
        last = {k: getattr(prefill, k) for k in ("num_evaluated_tokens", "prefill_s", "restore_s", "snapshot_s")}
    return {
        "kv_bytes_per_token": worker.engine.kv_bytes_per_token,
        "queued_jobs": worker.num_jobs,
        "last_prefill": last,
    }


async def dashboard(request: Request) -> Response:
    """A self-contained page (no CDN): it polls /dashboard/data and draws its own SVG charts."""
    page = resources.files("cachepoint.data").joinpath("dashboard.html").read_text()
    return HTMLResponse(page)


EXPLORER_ENTRIES = 200  # the most recently used live entries the explorer lists


async def dashboard_data(request: Request) -> Response:
    services = services_of(request)
    inference = services.inference
    entries = await inference.on_cache_thread(inference.cache.entries, EXPLORER_ENTRIES)
    body = {"series": services.telemetry.history.series(), "cache": asdict(inference.cache.stats()),
            "cluster": await cluster_view(inference, services.settings.node_name),
            "explorer": {"now": services.clock.now_s(), "entries": [asdict(e) for e in entries]}}  # fmt: skip
    return JSONResponse(body)


async def metrics(request: Request) -> Response:
    registry = services_of(request).telemetry.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def cluster(request: Request) -> Response:
    """Every Region's engine replicas with health, load and cached bytes (and other gateways' views)."""
    services = services_of(request)
    return JSONResponse(await cluster_view(services.inference, services.settings.node_name))


@asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    services: AppServices = app.state.services
    checks = asyncio.create_task(services.monitor.run()) if services.monitor and services.monitor.nodes() else None
    yield
    if checks is not None:
        checks.cancel()
    services.telemetry.close()  # shutting down: flush logs, stop workers and engine threads
    services.inference.close()


def create_app(services: AppServices) -> Starlette:
    routes = [
        Route("/model/{rest:path}", runtime, methods=["POST"]),
        Route("/v1/messages", anthropic_routes.messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", anthropic_routes.count_tokens, methods=["POST"]),
        Route("/anthropic/v1/messages", anthropic_routes.bedrock_messages, methods=["POST"]),
        Route("/anthropic/v1/messages/count_tokens", anthropic_routes.bedrock_count_tokens, methods=["POST"]),
        Route("/foundation-models", control.list_foundation_models, methods=["GET"]),
        Route("/foundation-models/{identifier:path}", control.get_foundation_model, methods=["GET"]),
        Route("/inference-profiles", control.list_profiles, methods=["GET"]),
        Route("/inference-profiles", control.create_profile, methods=["POST"]),
        Route("/inference-profiles/{identifier:path}", control.get_profile, methods=["GET"]),
        Route("/inference-profiles/{identifier:path}", control.delete_profile, methods=["DELETE"]),
        Route("/logging/modelinvocations", logging_config.put_logging, methods=["PUT"]),
        Route("/logging/modelinvocations", logging_config.get_logging, methods=["GET"]),
        Route("/logging/modelinvocations", logging_config.delete_logging, methods=["DELETE"]),
        Route("/tagResource", control.tag_resource, methods=["POST"]),
        Route("/untagResource", control.untag_resource, methods=["POST"]),
        Route("/listTagsForResource", control.list_tags, methods=["POST"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/dashboard", dashboard, methods=["GET"]),
        Route("/dashboard/data", dashboard_data, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/cachepoint/cache", cache_stats, methods=["GET"]),
        Route("/cachepoint/cluster", cluster, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=_lifespan,
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(
                AuthMiddleware,
                authenticator=services.authenticator,
                limits=services.settings.limits,
                clock=services.clock,
                on_throttle=lambda identity: services.telemetry.count_throttle(identity.region, identity.account_id),
            ),
        ],
        exception_handlers={CachepointError: handle_error, Exception: handle_error},
    )
    app.state.services = services
    return app
