"""Model lifecycle in process, as of 2026-12-01 on the server's clock: legacy models are served and marked,
end-of-life models get each surface's 404 (`enforce`, the default) or are served marked (`report`)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from cachepoint.api.app import create_app
from cachepoint.bootstrap import build_services
from cachepoint.clock import FakeClock
from cachepoint.engine.fake import FakeEngine
from cachepoint.models.lifecycle import LifecyclePolicy
from cachepoint.routing.profiles import ProfileStore
from cachepoint.settings import EngineSettings, Settings, settings_from_table
from tests.api.test_routes_control import TODAY_S
from tests.api.wire import Boto, anthropic_error, bedrock_error, sse

HAIKU_35 = "anthropic.claude-3-5-haiku-20241022-v1:0"  # Bedrock: end of life 2026-06-19 (on demand)
OPUS_41 = "us.anthropic.claude-opus-4-1-20250805-v1:0"  # Bedrock: legacy since 2026-07-08, end of life 2027-01-08
SONNET_46 = "us.anthropic.claude-sonnet-4-6"  # active
END_OF_LIFE = (
    "This model version has reached the end of its life. Please refer to the AWS documentation for more details."
)
USER = [{"role": "user", "content": [{"text": "Hi"}]}]
ANTHROPIC_HEADERS = {"x-api-key": "sk-test", "anthropic-version": "2023-06-01"}


def server(policy: LifecyclePolicy) -> TestClient:
    settings = Settings(engines={"default": EngineSettings("default", kind="fake")}, lifecycle=policy)
    services = build_services(settings, engine_factory=lambda _: FakeEngine(), profiles=ProfileStore(":memory:"),
                              clock=FakeClock(TODAY_S))  # fmt: skip
    return TestClient(create_app(services))


@pytest.fixture(params=list(LifecyclePolicy))
def policy(request: pytest.FixtureRequest) -> LifecyclePolicy:
    return request.param  # type: ignore[no-any-return]


def converse(client: TestClient, model_id: str, stream: bool = False) -> Any:
    return Boto(client, "bedrock-runtime")("ConverseStream" if stream else "Converse", modelId=model_id, messages=USER,
                                           inferenceConfig={"maxTokens": 2})  # fmt: skip


def test_an_end_of_life_model_gets_bedrocks_404_on_every_runtime_operation() -> None:
    with server(LifecyclePolicy.ENFORCE) as client:
        runtime = Boto(client, "bedrock-runtime")
        body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 2, "messages": [
            {"role": "user", "content": "Hi"}]}).encode()  # fmt: skip
        responses = [
            converse(client, HAIKU_35),
            converse(client, HAIKU_35, stream=True),
            converse(client, "us." + HAIKU_35),
            runtime("InvokeModel", modelId=HAIKU_35, body=body, contentType="application/json"),
            runtime("InvokeModelWithResponseStream", modelId=HAIKU_35, body=body, contentType="application/json"),
        ]
        for response in responses:
            assert bedrock_error(response) == (404, "ResourceNotFoundException", {"message": END_OF_LIFE})


def test_the_control_plane_drops_end_of_life_models_and_marks_legacy_ones() -> None:
    with server(LifecyclePolicy.ENFORCE) as client:
        control = Boto(client, "bedrock")
        listed = {m["modelId"]: m["modelLifecycle"] for m in control("ListFoundationModels").json()["modelSummaries"]}
        assert HAIKU_35 not in listed and listed[OPUS_41.removeprefix("us.")]["status"] == "LEGACY"
        assert bedrock_error(control("GetFoundationModel", modelIdentifier=HAIKU_35)) == (
            404, "ResourceNotFoundException", {"message": f"The model {HAIKU_35} does not exist."})  # fmt: skip
        profiles = [p["inferenceProfileId"] for p in control("ListInferenceProfiles").json()["inferenceProfileSummaries"]]
        assert "us." + HAIKU_35 not in profiles and OPUS_41 in profiles


def test_report_serves_an_end_of_life_model_and_marks_it_everywhere() -> None:
    with server(LifecyclePolicy.REPORT) as client:
        response = converse(client, HAIKU_35)
        assert response.status_code == 200, response.text
        assert response.headers["x-cachepoint-lifecycle"] == "END_OF_LIFE; end-of-life=2026-06-19"
        streamed = converse(client, HAIKU_35, stream=True)
        assert streamed.status_code == 200 and streamed.headers["x-cachepoint-lifecycle"].startswith("END_OF_LIFE")
        details = Boto(client, "bedrock")("GetFoundationModel", modelIdentifier=HAIKU_35).json()["modelDetails"]
        assert details["modelLifecycle"] == {
            "status": "LEGACY",  # the API has ACTIVE and LEGACY only: the past endOfLifeTime says the rest
            "legacyTime": "2025-12-19T00:00:00Z",
            "publicExtendedAccessTime": "2026-03-19T00:00:00Z",
            "endOfLifeTime": "2026-06-19T00:00:00Z",
        }


def test_legacy_models_are_served_with_the_date_their_life_ends(policy: LifecyclePolicy) -> None:
    with server(policy) as client:
        legacy, active = converse(client, OPUS_41), converse(client, SONNET_46)
    assert legacy.status_code == 200 and legacy.headers["x-cachepoint-lifecycle"] == "LEGACY; end-of-life=2027-01-08"
    assert active.status_code == 200 and "x-cachepoint-lifecycle" not in active.headers


def test_the_anthropic_api_retires_models_on_its_own_dates() -> None:
    """Anthropic retired Opus 4.1 on 2026-08-05; Bedrock keeps it (legacy) until 2027-01-08."""
    with server(LifecyclePolicy.ENFORCE) as client:
        body = {"model": "claude-opus-4-1-20250805", "max_tokens": 2, "messages": [{"role": "user", "content": "Hi"}]}
        retired = client.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
        streamed = client.post("/v1/messages", json=body | {"stream": True}, headers=ANTHROPIC_HEADERS)
        on_bedrock = converse(client, OPUS_41)
    for response in (retired, streamed):
        assert anthropic_error(response) == (
            404, {"type": "error", "error": {"type": "not_found_error", "message": "model: claude-opus-4-1-20250805"}})  # fmt: skip
    assert on_bedrock.status_code == 200


def test_report_serves_a_retired_model_on_the_anthropic_api_marked() -> None:
    with server(LifecyclePolicy.REPORT) as client:
        body = {"model": "claude-3-5-haiku-20241022", "max_tokens": 2, "stream": True,
                "messages": [{"role": "user", "content": "Hi"}]}  # fmt: skip
        response = client.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS)
    assert response.status_code == 200 and sse(response.text)[-1][0] == "message_stop"
    assert response.headers["x-cachepoint-lifecycle"] == "END_OF_LIFE; end-of-life=2026-02-19"


def test_the_policy_is_read_from_the_config_and_checked() -> None:
    assert settings_from_table({"catalog": {"lifecycle": "report"}}).lifecycle is LifecyclePolicy.REPORT
    assert settings_from_table({}).lifecycle is LifecyclePolicy.ENFORCE
    with pytest.raises(ValueError, match=r"\[catalog\] lifecycle must be one of \['enforce', 'report'\], not 'off'"):
        settings_from_table({"catalog": {"lifecycle": "off"}})
