"""Regions, inference profiles and routing through boto3 (`bedrock` and `bedrock-runtime` clients)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from cachepoint.bootstrap import build_services
from cachepoint.engine.fake import FakeEngine
from cachepoint.settings import EngineSettings, RoutingSettings, Settings
from tests.e2e.test_caching import CP, SONNET, document
from tests.live import LiveServer, serve

BASE = SONNET.removeprefix("us.")
SONNET_46 = "anthropic.claude-sonnet-4-6"  # has an apac. profile


def clients(url: str, region: str = "us-east-1", key: str = "AKIDREGIONS") -> tuple[Any, Any]:
    config = Config(retries={"total_max_attempts": 1}, read_timeout=120)
    make = lambda service: boto3.client(  # noqa: E731
        service, endpoint_url=url, region_name=region, aws_access_key_id=key, aws_secret_access_key="x", config=config
    )
    return make("bedrock"), make("bedrock-runtime")


def served(response: dict[str, Any]) -> tuple[str, int, int]:
    usage = response["usage"]
    region = response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-bedrock-inference-region"]
    return region, usage.get("cacheReadInputTokens", 0), usage.get("cacheWriteInputTokens", 0)


def ask(runtime: Any, model_id: str, text: str, question: str = "Q?") -> dict[str, Any]:
    return runtime.converse(  # type: ignore[no-any-return]
        modelId=model_id,
        system=[{"text": text}, CP],
        messages=[{"role": "user", "content": [{"text": question}]}],
        inferenceConfig={"maxTokens": 4, "temperature": 0},
    )


def test_system_profiles_are_listed_paginated_and_gettable(live: LiveServer) -> None:
    control, _ = clients(live.url)
    pages = control.get_paginator("list_inference_profiles").paginate(PaginationConfig={"PageSize": 7})
    profiles = [p for page in pages for p in page["inferenceProfileSummaries"]]
    ids = {p["inferenceProfileId"] for p in profiles}
    assert SONNET in ids and "global." + BASE in ids and "eu." + BASE not in ids  # eu. is not callable from us-east-1
    one = control.get_inference_profile(inferenceProfileIdentifier=SONNET)
    assert one["type"] == "SYSTEM_DEFINED" and one["status"] == "ACTIVE"
    assert [m["modelArn"].split("/")[-1] for m in one["models"]] == [BASE] * 3
    assert {m["modelArn"].split(":")[3] for m in one["models"]} == {"us-east-1", "us-east-2", "us-west-2"}
    by_arn = control.get_inference_profile(inferenceProfileIdentifier=one["inferenceProfileArn"])
    assert by_arn["inferenceProfileId"] == SONNET
    with pytest.raises(control.exceptions.ResourceNotFoundException):
        control.get_inference_profile(inferenceProfileIdentifier="us.anthropic.nope-v1:0")


def test_foundation_models(live: LiveServer) -> None:
    control, _ = clients(live.url)
    anthropic_models = control.list_foundation_models(byProvider="Anthropic")["modelSummaries"]
    assert anthropic_models and all(m["providerName"] == "Anthropic" for m in anthropic_models)
    details = control.get_foundation_model(modelIdentifier=BASE)["modelDetails"]
    assert details["modelArn"] == f"arn:aws:bedrock:us-east-1::foundation-model/{BASE}"
    assert details["inferenceTypesSupported"] == ["INFERENCE_PROFILE"]
    with pytest.raises(control.exceptions.ResourceNotFoundException):
        control.get_foundation_model(modelIdentifier="anthropic.nope-v1:0")


def test_application_profile_lifecycle_and_invocation(live: LiveServer) -> None:
    control, runtime = clients(live.url, key="AKIDAPPPROFILE")
    source = control.get_inference_profile(inferenceProfileIdentifier=SONNET)["inferenceProfileArn"]
    created = control.create_inference_profile(
        inferenceProfileName="team-a", modelSource={"copyFrom": source}, tags=[{"key": "team", "value": "a"}]
    )
    arn = created["inferenceProfileArn"]
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201 and created["status"] == "ACTIVE"
    profile = control.get_inference_profile(inferenceProfileIdentifier=arn)
    assert profile["type"] == "APPLICATION" and len(profile["models"]) == 3
    assert profile["models"][0]["modelArn"].split("/")[-1] == BASE  # what langchain-aws reads
    listed = control.list_inference_profiles(typeEquals="APPLICATION")["inferenceProfileSummaries"]
    assert [p["inferenceProfileArn"] for p in listed] == [arn]
    control.tag_resource(resourceARN=arn, tags=[{"key": "cost-center", "value": "42"}])
    control.untag_resource(resourceARN=arn, tagKeys=["team"])
    assert control.list_tags_for_resource(resourceARN=arn)["tags"] == [{"key": "cost-center", "value": "42"}]
    with pytest.raises(control.exceptions.ConflictException):
        control.create_inference_profile(inferenceProfileName="team-a", modelSource={"copyFrom": source})
    first = ask(runtime, arn, document("app"))
    assert served(first)[2] >= 1024
    assert served(ask(runtime, arn, document("app")))[1] == served(first)[2]
    _, other_runtime = clients(live.url, key="AKIDSOMEONEELSE")
    with pytest.raises(other_runtime.exceptions.ValidationException):  # another account cannot use it
        ask(other_runtime, arn, "x")
    control.delete_inference_profile(inferenceProfileIdentifier=arn)
    with pytest.raises(runtime.exceptions.ValidationException):
        ask(runtime, arn, "x")
    with pytest.raises(control.exceptions.ValidationException):
        control.delete_inference_profile(inferenceProfileIdentifier=SONNET)


def test_cache_affinity_keeps_every_read_in_one_region(live: LiveServer) -> None:
    _, runtime = clients(live.url)
    calls = [served(ask(runtime, SONNET, document("affinity"), f"Question {i}?")) for i in range(5)]
    region, _, written = calls[0]
    assert written >= 1024
    assert calls[1:] == [(region, written, 0)] * 4


def test_apac_profile_from_tokyo(live: LiveServer) -> None:
    _, runtime = clients(live.url, region="ap-northeast-1")
    response = runtime.converse(
        modelId="apac." + SONNET_46,
        messages=[{"role": "user", "content": [{"text": "Hi"}]}],
        inferenceConfig={"maxTokens": 2},
    )
    assert served(response)[0] in {"ap-northeast-1", "ap-northeast-2", "ap-southeast-1", "ap-southeast-2"}
    with pytest.raises(runtime.exceptions.ValidationException, match="The provided model identifier is invalid."):
        runtime.converse(modelId="us." + SONNET_46, messages=[{"role": "user", "content": [{"text": "Hi"}]}])


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Fake engine, Bedrock's cache-blind routing with a fixed seed, ap-northeast-2 not caching, us-east-2 down."""
    settings = Settings(
        engines={"default": EngineSettings("default", kind="fake")},
        routing=RoutingSettings(policy="bedrock", seed=7),
        regions_table={
            "regions": {"ap-northeast-2": {"prompt_caching_disabled": "*"}, "us-east-2": {"down": True}},
        },
        state_dir=tmp_path_factory.mktemp("state"),
    )
    engine = FakeEngine()
    with serve(build_services(settings, engine_factory=lambda _: engine)) as server:
        yield server


def test_bedrock_routing_rewrites_the_prefix_at_each_new_region(seeded: LiveServer) -> None:
    _, runtime = clients(seeded.url)
    text = "novel " * 300  # 1,800 tokens on the byte-level fake engine
    seen: dict[str, int] = {}
    regions = []
    for i in range(12):
        region, read, written = served(ask(runtime, "us." + SONNET_46, text, f"chapter {i}?"))
        regions.append(region)
        if region in seen:
            assert (read, written) == (seen[region], 0), f"call {i} in {region} should read"
        else:
            assert read == 0 and written > 1024, f"call {i}: first visit to {region} writes again"
            seen[region] = written
    assert len(set(regions)) >= 2 and "us-east-2" not in regions  # spread over Regions, never the down one


def test_a_region_that_does_not_cache_never_reports_cache_tokens(seeded: LiveServer) -> None:
    _, runtime = clients(seeded.url, region="ap-northeast-1")
    text = "roman " * 300
    results = [ask(runtime, "apac." + SONNET_46, text, f"q{i}") for i in range(16)]
    in_seoul = [r for r in results if served(r)[0] == "ap-northeast-2"]
    assert in_seoul, "the seeded spread reaches ap-northeast-2"
    for response in in_seoul:
        assert served(response)[1:] == (0, 0)
        assert response["ResponseMetadata"]["HTTPHeaders"]["x-cachepoint-cache"].startswith("region-disabled:")


def test_application_profiles_survive_a_restart(tmp_path: Path) -> None:
    settings = Settings(engines={"default": EngineSettings("default", kind="fake")}, state_dir=tmp_path)
    with serve(build_services(settings, engine_factory=lambda _: FakeEngine())) as first:
        control, _ = clients(first.url)
        source = f"arn:aws:bedrock:us-west-2::foundation-model/{BASE}"
        arn = control.create_inference_profile(inferenceProfileName="keep", modelSource={"copyFrom": source})[
            "inferenceProfileArn"
        ]
        control.tag_resource(resourceARN=arn, tags=[{"key": "k", "value": "v"}])
        first.services.inference.profiles.close()
    with serve(build_services(settings, engine_factory=lambda _: FakeEngine())) as second:
        control, runtime = clients(second.url)
        profile = control.get_inference_profile(inferenceProfileIdentifier=arn)
        assert (
            profile["inferenceProfileName"] == "keep" and profile["models"][0]["modelArn"].split(":")[3] == "us-west-2"
        )
        assert control.list_tags_for_resource(resourceARN=arn)["tags"] == [{"key": "k", "value": "v"}]
        response = runtime.converse(modelId=arn, messages=[{"role": "user", "content": [{"text": "hi"}]}])
        assert served(response)[0] == "us-west-2"
