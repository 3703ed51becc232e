"""Inputs that once gave a 500 (or worse) get a 4xx in the client's own error type, and are logged;
and the confirmed bugs of the hardening review, each reproduced with the client that met it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import boto3
import httpx
import pytest
from botocore.config import Config

from cachepoint.bootstrap import build_services
from cachepoint.engine.fake import FakeEngine
from cachepoint.routing.profiles import ProfileStore
from cachepoint.settings import EngineSettings, Settings
from tests.live import LiveServer, serve

SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
BASE_SONNET = SONNET.removeprefix("us.")
MALFORMED = "Malformed input request, please reformat your input and try again."
SURROGATE = f"{MALFORMED} The body contains an unpaired UTF-16 surrogate."
DEEP = "[" * 1000 + "]" * 1000
MESSAGES = [{"role": "user", "content": [{"text": "hello"}]}]
AUTH = {"authorization": "Bearer sk-hostile"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(engines={"default": EngineSettings("default", kind="fake")},
                        state_dir=tmp_path_factory.mktemp("hostile"))  # fmt: skip
    engine = FakeEngine(context_tokens=8192)
    services = build_services(settings, engine_factory=lambda _: engine, profiles=ProfileStore(":memory:"))
    with serve(services) as running:
        yield running


def client(server: LiveServer, service: str = "bedrock-runtime") -> Any:
    return boto3.client(service, endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="AKIDHOSTILE",
                        aws_secret_access_key="x", config=Config(retries={"total_max_attempts": 1}))  # fmt: skip


def logged(server: LiveServer) -> list[dict[str, Any]]:
    import gzip

    assert server.services.telemetry.flush()
    found = []
    for path in server.services.settings.log_dir.rglob("*.json.gz"):
        found += [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    return found


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (f"/model/{SONNET}/converse", '{"messages":[{"role":"user","content":[{"text":"\\ud800"}]}]}', SURROGATE),
        (f"/model/{SONNET}/converse", '{"messages":' + DEEP + "}", MALFORMED),
        (f"/model/{SONNET}/converse", '{"messages":[],"additionalModelRequestFields":{"a":' + "[" * 80 + "]" * 80 + "}}",
         "The request is nested more than 64 levels deep."),
        (f"/model/{SONNET}/invoke", '{"anthropic_version":"bedrock-2023-05-31","max_tokens":5,"messages":[{"role":"user","content":"\\udfff"}]}', SURROGATE),
        (f"/model/{BASE_SONNET}/count-tokens", '{"input":' + DEEP + "}", MALFORMED),
        (f"/model/{SONNET}/converse", '{"messages":[],"inferenceConfig":{"temperature":NaN}}', MALFORMED),
    ],
)
def test_hostile_bedrock_bodies_get_a_validation_exception(server: LiveServer, path: str, body: str, message: str) -> None:
    answer = httpx.post(server.url + path, content=body.encode(), headers=AUTH | {"content-type": "application/json"})
    assert (answer.status_code, answer.headers["x-amzn-ErrorType"], answer.json()) == (400, "ValidationException", {"message": message})


def test_failures_are_logged_with_their_error(server: LiveServer) -> None:
    headers = AUTH | {"x-amzn-requestid": "ignored"}
    answer = httpx.post(f"{server.url}/model/{SONNET}/converse", headers=headers,
                        content=b'{"messages":[{"role":"user","content":[{"text":"\\ud800"}]}]}')  # fmt: skip
    request_id = answer.headers["x-amzn-RequestId"]
    record = next(r for r in logged(server) if r["requestId"] == request_id)
    assert record["errorCode"] == "ValidationException" and record["operation"] == "Converse"
    assert record["modelId"] == SONNET


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/messages", '{"model":"claude-sonnet-4-6","max_tokens":5,"messages":[{"role":"user","content":"\\ud800"}]}'),
        ("/v1/messages", '{"model":"claude-sonnet-4-6","max_tokens":5,"messages":' + DEEP + "}"),
        ("/v1/messages/count_tokens", '{"model":"claude-sonnet-4-6","messages":' + DEEP + "}"),
    ],
)
def test_hostile_anthropic_bodies_get_an_invalid_request_error(server: LiveServer, path: str, body: str) -> None:
    """Raw bytes: the SDK itself would never send a lone surrogate or 1,000 nested arrays."""
    answer = httpx.post(server.url + path, content=body.encode(), headers={"x-api-key": "sk-hostile"})
    assert answer.status_code == 400
    error = answer.json()
    assert (error["type"], error["error"]["type"]) == ("error", "invalid_request_error")
    assert error["error"]["message"] == (SURROGATE if "ud800" in body else MALFORMED)


def test_nan_never_reaches_the_logging_configuration(server: LiveServer) -> None:
    url = f"{server.url}/logging/modelinvocations"
    body = b'{"loggingConfig":{"s3Config":{"bucketName":"logs","extra":NaN},"textDataDeliveryEnabled":true}}'
    answer = httpx.put(url, content=body, headers=AUTH)
    assert (answer.status_code, answer.json()) == (400, {"message": MALFORMED})
    control = client(server, "bedrock")
    assert "loggingConfig" not in control.get_model_invocation_logging_configuration()
    config = {"s3Config": {"bucketName": "logs"}, "textDataDeliveryEnabled": True}
    control.put_model_invocation_logging_configuration(loggingConfig=config)
    assert control.get_model_invocation_logging_configuration()["loggingConfig"] == config
    control.delete_model_invocation_logging_configuration()


def test_an_application_profile_arn_works_with_invoke_model(server: LiveServer) -> None:
    source = f"arn:aws:bedrock:us-east-1::foundation-model/{BASE_SONNET}"
    arn = client(server, "bedrock").create_inference_profile(
        inferenceProfileName="invoke-me", modelSource={"copyFrom": source})["inferenceProfileArn"]  # fmt: skip
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}
    runtime = client(server)
    answer = json.loads(runtime.invoke_model(modelId=arn, body=json.dumps(body))["body"].read())
    assert answer["type"] == "message" and answer["usage"]["output_tokens"] == 4
    assert runtime.converse(modelId=arn, messages=MESSAGES, inferenceConfig={"maxTokens": 4})["usage"]["outputTokens"] == 4


def test_anthropic_streams_reach_the_time_to_first_token_histogram(server: LiveServer) -> None:
    sdk = anthropic.Anthropic(base_url=server.url, api_key="sk-ttft", max_retries=0)
    with sdk.messages.stream(model="claude-sonnet-4-6", max_tokens=4, messages=[{"role": "user", "content": "hi"}]) as stream:
        assert stream.get_final_message().usage.output_tokens == 4
    metrics = httpx.get(f"{server.url}/metrics").text
    ttft = [line for line in metrics.splitlines() if line.startswith("TimeToFirstToken_count") and "claude-sonnet-4-6" in line]
    assert ttft and float(ttft[0].rsplit(" ", 1)[1]) >= 1


def test_every_regions_engine_is_built_before_the_first_request() -> None:
    built: list[str] = []

    def factory(settings: EngineSettings) -> FakeEngine:
        built.append(settings.name)
        return FakeEngine()

    services = build_services(Settings(engines={"default": EngineSettings("default", kind="fake")}),
                              engine_factory=factory, profiles=ProfileStore(":memory:"))  # fmt: skip
    regions = {r.region_id for r in services.inference.regions.regions.values() if not r.down}
    assert set(services.inference.pools["default"].workers()) == regions
    assert len(built) == len(regions)
    services.inference.close()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('[routing]\npolicy = "nope"\n', "cachepoint: unknown routing policy 'nope'; known: ['bedrock', 'cache-affinity', 'oracle']"),
        ('[auth.credentials.AKID]\nsecret = "s"\naccount = "../../x"\n', "cachepoint: [auth] accounts must be 12-digit account IDs, not '../../x'"),
        ('[auth.tokens]\n"t" = "../../x"\n', "cachepoint: [auth] accounts must be 12-digit account IDs, not '../../x'"),
        ("[limits]\nmax_body_bytes = 0\n", "cachepoint: [limits] values must be positive"),
        ("[cache]\nmax_account_share = 2\n", "cachepoint: [cache] max_account_share must be in (0, 1]"),
    ],
)
def test_configuration_mistakes_are_said_plainly(tmp_path: Path, config: str, message: str) -> None:
    path = tmp_path / "cachepoint.toml"
    path.write_text(f'[server]\nstate_dir = "{tmp_path}"\n' + config)
    done = subprocess.run([sys.executable, "-m", "cachepoint", "serve", "--config", str(path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (done.returncode, done.stderr.strip()) == (2, message)
