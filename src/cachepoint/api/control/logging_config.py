"""Put/Get/DeleteModelInvocationLoggingConfiguration: the caller's account decides whether its invocations
are logged and whether bodies are included (`textDataDeliveryEnabled`); the server's [logging] settings
apply to accounts that never set one."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cachepoint.api.common import call_context, decoded_body, services_of
from cachepoint.api.decoding import model_decoder
from cachepoint.api.errors import request_id_of
from cachepoint.api.validation import coral_message


class _Destination(BaseModel):
    model_config = ConfigDict(extra="allow")


class S3ConfigIn(_Destination):
    bucketName: str = Field(min_length=3, max_length=63)
    keyPrefix: str | None = Field(default=None, max_length=1024)


class CloudWatchConfigIn(_Destination):
    logGroupName: str = Field(min_length=1, max_length=512)
    roleArn: str


class LoggingConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cloudWatchConfig: CloudWatchConfigIn | None = None
    s3Config: S3ConfigIn | None = None
    textDataDeliveryEnabled: bool | None = None
    imageDataDeliveryEnabled: bool | None = None
    embeddingDataDeliveryEnabled: bool | None = None
    videoDataDeliveryEnabled: bool | None = None
    audioDataDeliveryEnabled: bool | None = None


class PutLoggingIn(BaseModel):
    loggingConfig: LoggingConfigIn


def _json(body: dict[str, Any], request: Request) -> Response:
    return JSONResponse(body, headers={"x-amzn-RequestId": request_id_of(request)})


async def put_logging(request: Request) -> Response:
    body = await decoded_body(request, model_decoder(PutLoggingIn, coral_message))
    services_of(request).control.put_logging(call_context(request), body.loggingConfig.model_dump(exclude_none=True))
    return _json({}, request)


async def get_logging(request: Request) -> Response:
    config = services_of(request).control.logging(call_context(request))
    return _json({"loggingConfig": config} if config is not None else {}, request)


async def delete_logging(request: Request) -> Response:
    services_of(request).control.put_logging(call_context(request), None)
    return _json({}, request)
