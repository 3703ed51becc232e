"""Request plumbing shared by every route: the services container, the call context, request bodies."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from starlette.requests import Request

from cachepoint.api.auth import identity_of
from cachepoint.api.errors import request_id_of
from cachepoint.auth.authenticator import Authenticator
from cachepoint.clock import Clock
from cachepoint.cluster.health import HealthMonitor
from cachepoint.service import InferenceService, InvocationRequest, Operation
from cachepoint.service.calls import Decoder, LogOutput
from cachepoint.service.control import ControlService
from cachepoint.settings import Settings
from cachepoint.telemetry.recorder import Telemetry
from cachepoint.types import AccountId, CallContext, RegionId, RequestId

T = TypeVar("T")


@dataclass(frozen=True)
class AppServices:
    settings: Settings
    inference: InferenceService
    control: ControlService
    clock: Clock
    telemetry: Telemetry
    authenticator: Authenticator
    notes: tuple[str, ...] = ()  # start-up facts for the banner (cache tiers, what a restart recovered)
    monitor: HealthMonitor | None = None  # health checks of `cachepoint node` replicas (run while serving)


def services_of(request: Request) -> AppServices:
    services: AppServices = request.app.state.services
    return services


def call_context(request: Request) -> CallContext:
    identity = identity_of(request)
    return CallContext(
        account_id=AccountId(identity.account_id),
        region=RegionId(identity.region),
        request_id=RequestId(request_id_of(request)),
        principal=identity.principal,
    )


async def invocation(
    request: Request,
    operation: Operation,
    model_id: str,
    decode: Decoder,
    log_output: LogOutput | None = None,
    metadata: Mapping[str, str] | None = None,
    response_id: str = "",
    service_tier: str | None = None,
) -> InvocationRequest:
    body = await request.body()
    output = log_output or (lambda result: None)
    ctx = call_context(request)
    return InvocationRequest(ctx, operation, model_id, body, decode, output, metadata, response_id, service_tier)


async def decoded_body(request: Request, decode: Callable[[bytes], T]) -> T:
    """A control-plane body, decoded and validated off the event loop when it is large."""
    return await services_of(request).inference.offload.decode(decode, await request.body())
