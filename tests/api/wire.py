"""Helpers for the in-process route tests: requests shaped by botocore's own serializer, the two stream
decoders (botocore's event-stream parser and a line-based SSE reader), and masking of random values.

Token arithmetic: the fake engine's tokenizer gives one token per UTF-8 byte and one per ChatML marker, so
every usage number in these tests is a sum of the lengths below.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

import botocore.session
from botocore.eventstream import EventStreamBuffer
from botocore.serialize import create_serializer
from botocore.utils import percent_encode_sequence
from starlette.testclient import TestClient

if TYPE_CHECKING:
    from httpx2 import Response  # what starlette's TestClient returns

ACCESS_KEY = "AKIDTEST"
REGION = "us-east-1"
ZERO_SIGNATURE = "0" * 64

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
BEDROCK_MESSAGE_ID = r"msg_bdrk_[0-9a-f]{24}"
ANTHROPIC_MESSAGE_ID = r"msg_[0-9a-f]{24}"
MILLISECONDS = r"\d+"
ISO_SECONDS = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"
APP_PROFILE_ID = r"[a-z0-9]{12}"

# ChatML pieces, in tokens: <|im_start|> and <|im_end|> are one token each, every other byte is one token.
USER_OPENER = 1 + len("user\n")  # <|im_start|>user\n
SYSTEM_OPENER = 1 + len("system\n")  # <|im_start|>system\n
NEXT_USER = 1 + len("\n") + 1 + len("user\n")  # <|im_end|>\n<|im_start|>user\n
SEPARATOR = len("\n\n")  # between two blocks of one message
ASSISTANT_TAIL = 1 + len("\n") + 1 + len("assistant\n")  # <|im_end|>\n<|im_start|>assistant\n


def sigv4_headers(region: str = REGION, access_key: str = ACCESS_KEY) -> dict[str, str]:
    """What botocore sends in dev mode: nothing is verified, but the scope names the account and Region."""
    now = time.gmtime()
    return {
        "Authorization": (
            f"AWS4-HMAC-SHA256 Credential={access_key}/{time.strftime('%Y%m%d', now)}/{region}/bedrock/aws4_request, "
            f"SignedHeaders=content-type;host;x-amz-date, Signature={ZERO_SIGNATURE}"
        ),
        "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", now),
        "User-Agent": "Boto3/1.44.5 md/Botocore#1.44.8 ua/2.1 os/linux lang/python#3.11",
    }


class Boto:
    """Sends an operation exactly as botocore serializes it (path encoding, query names, headers, body)."""

    def __init__(self, client: TestClient, service: str, region: str = REGION, access_key: str = ACCESS_KEY) -> None:
        self.client = client
        self.model = botocore.session.get_session().get_service_model(service)
        # no client-side validation: the server, not botocore, must reject bad input
        self.serializer = create_serializer(self.model.metadata["protocol"], include_validation=False)
        self.region = region
        self.access_key = access_key

    def __call__(self, operation: str, **params: Any) -> Response:
        request = self.serializer.serialize_to_request(params, self.model.operation_model(operation))
        url = request["url_path"]
        if request["query_string"]:
            url += "?" + percent_encode_sequence(request["query_string"])
        headers = dict(request["headers"]) | sigv4_headers(self.region, self.access_key)
        body = request["body"] if isinstance(request["body"], bytes) else request["body"].encode()
        response: Response = self.client.request(request["method"], url, content=body, headers=headers)
        return response


def masked(container: dict[str, Any], key: str, pattern: str) -> Any:
    """Checks a random value's format, replaces it with `<key>` (so the rest compares exactly), returns it."""
    value = container[key]
    assert re.fullmatch(pattern, str(value)), f"{key}={value!r} does not match {pattern}"
    container[key] = f"<{key}>"
    return value


def assert_request_id(response: Response, header: str = "x-amzn-RequestId") -> str:
    request_id = response.headers[header]
    assert re.fullmatch(UUID, request_id)
    return request_id


def bedrock_error(response: Response) -> tuple[int, str, dict[str, Any]]:
    """(status, x-amzn-ErrorType, body) of a rest-json error, after checking its other headers."""
    assert response.headers["content-type"] == "application/json"
    assert_request_id(response)
    return response.status_code, response.headers["x-amzn-ErrorType"], response.json()


def anthropic_error(response: Response) -> tuple[int, dict[str, Any]]:
    """(status, body) of an Anthropic error; the body's request_id must be the `request-id` header's."""
    assert response.headers["content-type"] == "application/json"
    request_id = assert_request_id(response, "request-id")
    body: dict[str, Any] = response.json()
    assert body.pop("request_id") == request_id
    return response.status_code, body


def event_stream(raw: bytes) -> list[tuple[dict[str, str], Any]]:
    """Frames decoded by botocore's parser (CRCs checked), each as (headers, JSON payload)."""
    buffer = EventStreamBuffer()
    buffer.add_data(raw)
    return [(dict(message.headers), json.loads(message.payload)) for message in buffer]


def events(raw: bytes) -> list[tuple[str, Any]]:
    """(`:event-type`, payload) of event frames; fails on an exception frame."""
    frames = event_stream(raw)
    for headers, _ in frames:
        assert headers[":message-type"] == "event" and headers[":content-type"] == "application/json", headers
    return [(headers[":event-type"], payload) for headers, payload in frames]


def sse(text: str) -> list[tuple[str, Any]]:
    """(event, data) pairs of a text/event-stream body; every event must carry both lines."""
    assert text.endswith("\n\n")
    found = []
    for chunk in text.removesuffix("\n\n").split("\n\n"):
        lines = chunk.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), chunk
        found.append((lines[0].removeprefix("event: "), json.loads(lines[1].removeprefix("data: "))))
    return found
