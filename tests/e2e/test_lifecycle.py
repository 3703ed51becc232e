"""Model lifecycle through the clients users run, against a real server whose clock reads 2026-12-01: boto3
(runtime and control plane), the AWS CLI, anthropic's `Anthropic` and `AnthropicBedrock`. The engine is the fake
one: what is tested is what each client receives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import anthropic
import boto3
import pytest
from botocore.config import Config

from cachepoint.bootstrap import build_services
from cachepoint.clock import FakeClock
from cachepoint.engine.fake import FakeEngine
from cachepoint.models.lifecycle import LifecyclePolicy
from cachepoint.routing.profiles import ProfileStore
from cachepoint.settings import EngineSettings, Settings
from tests.api.test_lifecycle import END_OF_LIFE, HAIKU_35, OPUS_41
from tests.api.test_routes_control import TODAY_S
from tests.live import LiveServer, serve

USER = [{"role": "user", "content": [{"text": "Hi"}]}]
KEYS = {"aws_access_key_id": "AKIDLIFE", "aws_secret_access_key": "x"}


@pytest.fixture(scope="module", params=list(LifecyclePolicy))
def dated(request: pytest.FixtureRequest) -> Iterator[tuple[LiveServer, LifecyclePolicy]]:
    settings = Settings(engines={"default": EngineSettings("default", kind="fake")}, lifecycle=request.param)
    services = build_services(settings, engine_factory=lambda _: FakeEngine(), profiles=ProfileStore(":memory:"),
                              clock=FakeClock(TODAY_S))  # fmt: skip
    with serve(services) as server:
        yield server, request.param


def client(server: LiveServer, service: str) -> Any:
    config = Config(retries={"total_max_attempts": 1})
    return boto3.client(service, endpoint_url=server.url, region_name="us-east-1", config=config, **KEYS)


def test_boto3_sees_bedrocks_end_of_life(dated: tuple[LiveServer, LifecyclePolicy]) -> None:
    server, policy = dated
    runtime, control = client(server, "bedrock-runtime"), client(server, "bedrock")
    if policy is LifecyclePolicy.ENFORCE:
        with pytest.raises(runtime.exceptions.ResourceNotFoundException) as error:
            runtime.converse(modelId=HAIKU_35, messages=USER, inferenceConfig={"maxTokens": 2})
        assert error.value.response["Error"]["Message"] == END_OF_LIFE
        assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        with pytest.raises(control.exceptions.ResourceNotFoundException):
            control.get_foundation_model(modelIdentifier=HAIKU_35)
    else:
        reply = runtime.converse(modelId=HAIKU_35, messages=USER, inferenceConfig={"maxTokens": 2})
        headers = reply["ResponseMetadata"]["HTTPHeaders"]
        assert headers["x-cachepoint-lifecycle"] == "END_OF_LIFE; end-of-life=2026-06-19"
        lifecycle = control.get_foundation_model(modelIdentifier=HAIKU_35)["modelDetails"]["modelLifecycle"]
        assert lifecycle["status"] == "LEGACY" and lifecycle["endOfLifeTime"].isoformat() == "2026-06-19T00:00:00+00:00"
    legacy = runtime.converse(modelId=OPUS_41, messages=USER, inferenceConfig={"maxTokens": 2})
    assert legacy["ResponseMetadata"]["HTTPHeaders"]["x-cachepoint-lifecycle"] == "LEGACY; end-of-life=2027-01-08"


def test_the_aws_cli_lists_lifecycles_and_gets_the_404(dated: tuple[LiveServer, LifecyclePolicy]) -> None:
    server, policy = dated
    env = os.environ | {"AWS_ACCESS_KEY_ID": "AKIDLIFE", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}
    base = [sys.executable, "-m", "awscli", "--endpoint-url", server.url, "--output", "json"]
    listed = subprocess.run([*base, "bedrock", "list-foundation-models"], env=env, capture_output=True, text=True,
                            timeout=120, check=True)  # fmt: skip
    statuses = {m["modelId"]: m["modelLifecycle"]["status"] for m in json.loads(listed.stdout)["modelSummaries"]}
    assert statuses[OPUS_41.removeprefix("us.")] == "LEGACY" and statuses["anthropic.claude-sonnet-4-6"] == "ACTIVE"
    assert (HAIKU_35 in statuses) is (policy is LifecyclePolicy.REPORT)
    messages = json.dumps(USER)
    called = subprocess.run([*base, "bedrock-runtime", "converse", "--model-id", HAIKU_35, "--messages", messages],
                            env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    if policy is LifecyclePolicy.ENFORCE:
        assert called.returncode != 0
        assert f"(ResourceNotFoundException) when calling the Converse operation: {END_OF_LIFE}" in called.stderr
    else:
        assert called.returncode == 0 and json.loads(called.stdout)["usage"]["outputTokens"] > 0


def test_anthropic_clients_see_each_services_dates(dated: tuple[LiveServer, LifecyclePolicy]) -> None:
    """Anthropic's API retired Opus 4.1 on 2026-08-05; Bedrock's Anthropic route still serves it (legacy)."""
    server, policy = dated
    hi = [{"role": "user", "content": "Hi"}]
    direct = anthropic.Anthropic(base_url=server.url, api_key="sk-life", max_retries=0)
    bedrock = anthropic.AnthropicBedrock(base_url=server.url, aws_region="us-east-1", aws_access_key="AKIDLIFE",
                                         aws_secret_key="x", max_retries=0)  # fmt: skip
    served = bedrock.messages.create(model=OPUS_41, max_tokens=2, messages=hi)  # type: ignore[arg-type]
    assert served.usage.output_tokens > 0
    if policy is LifecyclePolicy.ENFORCE:
        with pytest.raises(anthropic.NotFoundError) as retired:
            direct.messages.create(model="claude-opus-4-1-20250805", max_tokens=2, messages=hi)  # type: ignore[arg-type]
        assert retired.value.body["error"] == {"type": "not_found_error", "message": "model: claude-opus-4-1-20250805"}  # type: ignore[index]
        with pytest.raises(anthropic.NotFoundError) as ended:
            bedrock.messages.create(model=HAIKU_35, max_tokens=2, messages=hi)  # type: ignore[arg-type]
        assert ended.value.status_code == 404 and END_OF_LIFE in str(ended.value)
    else:
        raw = direct.messages.with_raw_response.create(model="claude-opus-4-1-20250805", max_tokens=2, messages=hi)  # type: ignore[arg-type]
        assert raw.headers["x-cachepoint-lifecycle"] == "END_OF_LIFE; end-of-life=2026-08-05"
