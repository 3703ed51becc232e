"""OpenTelemetry export end to end: boto3 → cachepoint (`[telemetry] otlp_endpoint`) → a real OTLP/HTTP
receiver started here (protobuf decoded with the opentelemetry-proto messages). The spans' GenAI cache
attributes equal the responses' usage; the metrics arrive too."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from cachepoint.bootstrap import build_services
from cachepoint.engine.fake import FakeEngine
from cachepoint.routing.profiles import ProfileStore
from cachepoint.settings import EngineSettings, Settings
from tests.live import serve

SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"


class Receiver:
    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.metrics: list[str] = []
        self.paths: list[str] = []


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.paths.append(self.path)
            if self.path == "/v1/traces":
                request = ExportTraceServiceRequest.FromString(body)
                for resource in request.resource_spans:
                    for scope in resource.scope_spans:
                        got.spans += [MessageToDict(span) for span in scope.spans]
            elif self.path == "/v1/metrics":
                request = ExportMetricsServiceRequest.FromString(body)
                for resource in request.resource_metrics:
                    for scope in resource.scope_metrics:
                        got.metrics += [m.name for m in scope.metrics]
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield got, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def attributes(span: dict[str, Any]) -> dict[str, Any]:
    found = {}
    for item in span.get("attributes", []):
        value = item["value"]
        found[item["key"]] = int(value["intValue"]) if "intValue" in value else value.get("stringValue", value)
    return found


def test_spans_carry_the_genai_cache_attributes_of_each_call(tmp_path: Path, receiver: tuple[Receiver, str]) -> None:
    got, endpoint = receiver
    settings = Settings(engines={"default": EngineSettings("default", kind="fake")}, state_dir=tmp_path,
                        otlp_endpoint=endpoint)  # fmt: skip
    services = build_services(
        settings, engine_factory=lambda _: FakeEngine(context_tokens=8192), profiles=ProfileStore(":memory:")
    )
    with serve(services) as server:
        runtime = boto3.client("bedrock-runtime", endpoint_url=server.url, region_name="us-east-1",
                               aws_access_key_id="AKIDOTLP", aws_secret_access_key="x",
                               config=Config(retries={"total_max_attempts": 1}))  # fmt: skip
        system = [{"text": "ledger " * 200}, {"cachePoint": {"type": "default"}}]
        messages = [{"role": "user", "content": [{"text": "Hello"}]}]
        responses = [runtime.converse(modelId=SONNET, system=system, messages=messages) for _ in range(2)]
        assert services.telemetry.otlp is not None
        services.telemetry.otlp.flush()

    assert {"/v1/traces", "/v1/metrics"} <= set(got.paths)
    spans = sorted(got.spans, key=lambda s: int(s["startTimeUnixNano"]))
    assert [s["name"] for s in spans] == [f"chat {SONNET}"] * 2, "one span per call, named after the model invoked"
    for span, response in zip(spans, responses, strict=True):
        usage, found = response["usage"], attributes(span)
        assert found["gen_ai.operation.name"] == "chat" and found["gen_ai.provider.name"] == "aws.bedrock"
        assert found["gen_ai.usage.cache_read.input_tokens"] == usage["cacheReadInputTokens"]
        assert found["gen_ai.usage.cache_creation.input_tokens"] == usage["cacheWriteInputTokens"]
        assert found["gen_ai.usage.output_tokens"] == usage["outputTokens"]
        total = usage["inputTokens"] + usage["cacheReadInputTokens"] + usage["cacheWriteInputTokens"]
        assert found["gen_ai.usage.input_tokens"] == total
        assert found["cachepoint.request_id"] == response["ResponseMetadata"]["RequestId"]
        header = response["ResponseMetadata"]["HTTPHeaders"]["x-cachepoint-cache"]
        events = [{a["key"]: a["value"] for a in e["attributes"]} for e in span["events"]]
        assert [e["cachepoint.outcome"]["stringValue"] for e in events] == [header.split(":")[0]]
    assert attributes(spans[1])["gen_ai.usage.cache_read.input_tokens"] > 1024, "the second call read the prefix"
    assert {"gen_ai.client.token.usage", "gen_ai.client.operation.duration"} <= set(got.metrics)
