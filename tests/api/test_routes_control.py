"""The Bedrock control plane in process: foundation models, inference profiles (system and application), tags
and the model-invocation logging configuration, each request shaped by botocore's `bedrock` serializer and
each response compared whole with botocore's shapes (FoundationModelSummary, InferenceProfileSummary, ...)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest

from cachepoint.api.common import AppServices
from cachepoint.bootstrap import build_services
from cachepoint.clock import FakeClock
from cachepoint.engine.fake import FakeEngine
from cachepoint.routing.profiles import ProfileStore
from cachepoint.settings import EngineSettings, Settings
from tests.api.wire import (
    ACCESS_KEY,
    APP_PROFILE_ID,
    ISO_SECONDS,
    Boto,
    assert_request_id,
    bedrock_error,
    masked,
    sigv4_headers,
)

if TYPE_CHECKING:
    from httpx2 import Response  # what starlette's TestClient returns

SONNET_BASE = "anthropic.claude-sonnet-4-5-20250929-v1:0"
SONNET_FM_ARN = f"arn:aws:bedrock:us-east-1::foundation-model/{SONNET_BASE}"
US = ("us-east-1", "us-east-2", "us-west-2")  # the us. geography's configured destinations
EVERYWHERE = US + ("eu-west-1", "eu-central-1", "ap-northeast-1", "ap-northeast-2", "ap-southeast-1", "ap-southeast-2")

TODAY_S = 1_796_126_400.0  # 2026-12-01T12:00Z: the control plane lists the catalog as of this instant


def _dates(legacy: str, extended: str, eol: str, launched: str | None = None) -> dict[str, str]:
    dated = {"startOfLifeTime": launched, "legacyTime": legacy, "publicExtendedAccessTime": extended,
             "endOfLifeTime": eol}  # fmt: skip
    return {name: f"{day}T00:00:00Z" for name, day in dated.items() if day}


def _launched(day: str) -> dict[str, str]:
    return {"status": "ACTIVE", "startOfLifeTime": f"{day}T00:00:00Z"}


# (model ID, name, provider, on demand, lifecycle): the packaged catalog in its order, as listed on TODAY_S.
# Past their end of life on that day (Bedrock's dates), and so not listed: Claude 3.5 Haiku (2026-06-19),
# Claude 3.7 Sonnet (2026-04-28), Claude Sonnet 4 (2026-10-14), Claude Opus 4 (2026-05-31), Nova Premier (2026-09-14).
ACTIVE = {"status": "ACTIVE"}
CATALOG = [
    ("anthropic.claude-sonnet-4-5-20250929-v1:0", "Claude Sonnet 4.5", "Anthropic", False,
     {"status": "LEGACY"} | _dates("2026-10-08", "2027-01-08", "2027-04-08", "2025-09-29")),
    ("anthropic.claude-sonnet-4-6", "Claude Sonnet 4.6", "Anthropic", False, _launched("2026-02-17")),
    ("anthropic.claude-haiku-4-5-20251001-v1:0", "Claude Haiku 4.5", "Anthropic", False, ACTIVE),
    ("anthropic.claude-opus-4-1-20250805-v1:0", "Claude Opus 4.1", "Anthropic", False,
     {"status": "LEGACY"} | _dates("2026-07-08", "2026-10-08", "2027-01-08")),
    ("anthropic.claude-opus-4-5-20251101-v1:0", "Claude Opus 4.5", "Anthropic", False, ACTIVE),
    ("anthropic.claude-opus-4-6-v1", "Claude Opus 4.6", "Anthropic", False, _launched("2026-02-05")),
    ("anthropic.claude-opus-4-7", "Claude Opus 4.7", "Anthropic", False, _launched("2026-04-16")),
    ("anthropic.claude-opus-4-8", "Claude Opus 4.8", "Anthropic", False, _launched("2026-05-28")),
    ("anthropic.claude-opus-5", "Claude Opus 5", "Anthropic", False, _launched("2026-07-24")),
    ("anthropic.claude-sonnet-5", "Claude Sonnet 5", "Anthropic", False, _launched("2026-06-30")),
    ("amazon.nova-micro-v1:0", "Nova Micro", "Amazon", True, ACTIVE),
    ("amazon.nova-lite-v1:0", "Nova Lite", "Amazon", True, ACTIVE),
    ("amazon.nova-pro-v1:0", "Nova Pro", "Amazon", True, ACTIVE),
    ("meta.llama3-3-70b-instruct-v1:0", "Llama 3.3 70B Instruct", "Meta", False, ACTIVE),
]  # fmt: skip
# the system profiles seen from us-east-1, in the order ListInferenceProfiles gives them
SYSTEM_PROFILE_IDS = [
    "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "global.anthropic.claude-sonnet-4-6",
    "us.anthropic.claude-sonnet-4-6",
    "global.anthropic.claude-haiku-4-5-20251001-v1:0",
    "us.anthropic.claude-haiku-4-5-20251001-v1:0",
    "us.anthropic.claude-opus-4-1-20250805-v1:0",
    "global.anthropic.claude-opus-4-5-20251101-v1:0",
    "us.anthropic.claude-opus-4-5-20251101-v1:0",
    "global.anthropic.claude-opus-4-6-v1",
    "us.anthropic.claude-opus-4-6-v1",
    "global.anthropic.claude-opus-4-7",
    "us.anthropic.claude-opus-4-7",
    "global.anthropic.claude-opus-4-8",
    "us.anthropic.claude-opus-4-8",
    "global.anthropic.claude-opus-5",
    "us.anthropic.claude-opus-5",
    "global.anthropic.claude-sonnet-5",
    "us.anthropic.claude-sonnet-5",
    "us.amazon.nova-micro-v1:0",
    "us.amazon.nova-lite-v1:0",
    "us.amazon.nova-pro-v1:0",
    "us.meta.llama3-3-70b-instruct-v1:0",
]


@pytest.fixture
def fake_services(fake_engine: FakeEngine) -> AppServices:
    """The server as of TODAY_S (the lifecycle's dates are evaluated on its clock)."""
    settings = Settings(engines={"default": EngineSettings("default", kind="fake")})
    return build_services(settings, engine_factory=lambda _: fake_engine, profiles=ProfileStore(":memory:"),
                          clock=FakeClock(TODAY_S))  # fmt: skip


@pytest.fixture
def account(fake_services: AppServices) -> str:
    """The dev-mode account of ACCESS_KEY (derived from the key, so state stays per key)."""
    return fake_services.settings.account_for(ACCESS_KEY)


def ok(response: Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert_request_id(response)
    return response.json()


def summary(model_id: str, name: str, provider: str, on_demand: bool, lifecycle: dict[str, str]) -> dict[str, Any]:
    return {
        "modelArn": f"arn:aws:bedrock:us-east-1::foundation-model/{model_id}",
        "modelId": model_id,
        "modelName": name,
        "providerName": provider,
        "inputModalities": ["TEXT"],
        "outputModalities": ["TEXT"],
        "responseStreamingSupported": True,
        "customizationsSupported": [],
        "inferenceTypesSupported": ["ON_DEMAND"] if on_demand else ["INFERENCE_PROFILE"],
        "modelLifecycle": lifecycle,
    }


def fm_arns(model_id: str, regions: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"modelArn": f"arn:aws:bedrock:{region}::foundation-model/{model_id}"} for region in regions]


def sonnet_profile(account: str, geo: str, regions: tuple[str, ...]) -> dict[str, Any]:
    names = {"us": "US", "global": "Global"}
    listed = ", ".join(regions[:-1]) + f" and {regions[-1]}"
    return {
        "inferenceProfileName": f"{names[geo]} Claude Sonnet 4.5",
        "description": f"Routes requests to Claude Sonnet 4.5 in {listed}.",
        "createdAt": "2024-01-01T00:00:00Z",
        "updatedAt": "2024-01-01T00:00:00Z",
        "inferenceProfileArn": f"arn:aws:bedrock:us-east-1:{account}:inference-profile/{geo}.{SONNET_BASE}",
        "models": fm_arns(SONNET_BASE, regions),
        "inferenceProfileId": f"{geo}.{SONNET_BASE}",
        "status": "ACTIVE",
        "type": "SYSTEM_DEFINED",
    }


# -- foundation models -------------------------------------------------------------------------------------------


def test_list_foundation_models(control: Boto) -> None:
    assert ok(control("ListFoundationModels")) == {"modelSummaries": [summary(*row) for row in CATALOG]}


@pytest.mark.parametrize(
    ("filters", "model_ids"),
    [
        (
            {"byProvider": "Amazon", "byInferenceType": "ON_DEMAND"},
            ["amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0", "amazon.nova-pro-v1:0"],
        ),
        ({"byProvider": "meta"}, ["meta.llama3-3-70b-instruct-v1:0"]),
        ({"byInferenceType": "PROVISIONED"}, []),
        ({"byOutputModality": "TEXT", "byProvider": "Meta"}, ["meta.llama3-3-70b-instruct-v1:0"]),
        ({"byOutputModality": "EMBEDDING"}, []),  # every model here outputs TEXT only
        ({"byCustomizationType": "FINE_TUNING"}, []),  # every model here has customizationsSupported []
    ],
    ids=[
        "provider-and-inference-type",
        "provider-any-case",
        "provisioned",
        "text-output",
        "embedding-output",
        "fine-tuning",
    ],
)
def test_list_foundation_models_filters(control: Boto, filters: dict[str, str], model_ids: list[str]) -> None:
    body = ok(control("ListFoundationModels", **filters))

    assert body == {"modelSummaries": [summary(*row) for row in CATALOG if row[0] in model_ids]}
    assert [s["modelId"] for s in body["modelSummaries"]] == model_ids


def test_list_foundation_models_rejects_an_unknown_inference_type(control: Boto) -> None:
    """`byInferenceType` is the InferenceType enum in botocore's model; Coral refuses values outside it."""
    response = control("ListFoundationModels", byInferenceType="BOGUS")

    assert bedrock_error(response) == (
        400,
        "ValidationException",
        {
            "message": "1 validation error detected: Value 'BOGUS' at 'byInferenceType' failed to satisfy constraint: "
            "Member must satisfy enum value set: [ON_DEMAND, PROVISIONED]"
        },
    )


@pytest.mark.parametrize("identifier", [SONNET_BASE, SONNET_FM_ARN], ids=["id", "arn"])
def test_get_foundation_model(control: Boto, identifier: str) -> None:
    body = ok(control("GetFoundationModel", modelIdentifier=identifier))

    assert body == {"modelDetails": summary(*CATALOG[0])}


def test_get_unknown_foundation_model_is_not_found(control: Boto) -> None:
    response = control("GetFoundationModel", modelIdentifier="acme.nope-v1:0")

    assert bedrock_error(response) == (
        404,
        "ResourceNotFoundException",
        {"message": "The model acme.nope-v1:0 does not exist."},
    )


# -- inference profiles ----------------------------------------------------------------------------------------------


def test_list_system_profiles_as_seen_from_the_callers_region(control: Boto) -> None:
    body = ok(control("ListInferenceProfiles"))

    assert [p["inferenceProfileId"] for p in body["inferenceProfileSummaries"]] == SYSTEM_PROFILE_IDS
    assert "nextToken" not in body


def test_list_profiles_pages_with_next_token(control: Boto, account: str) -> None:
    first = ok(control("ListInferenceProfiles", maxResults=5, typeEquals="SYSTEM_DEFINED"))
    assert first["nextToken"] == "5"
    assert len(first["inferenceProfileSummaries"]) == 5
    assert first["inferenceProfileSummaries"][0] == sonnet_profile(account, "global", EVERYWHERE)

    pages, token = [first], first["nextToken"]
    while token:
        pages.append(ok(control("ListInferenceProfiles", maxResults=5, nextToken=token)))
        token = pages[-1].get("nextToken")

    assert [p["inferenceProfileId"] for page in pages for p in page["inferenceProfileSummaries"]] == SYSTEM_PROFILE_IDS
    assert len(pages) == 5


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            {"typeEquals": "BOGUS"},
            "1 validation error detected: Value 'BOGUS' at 'type' failed to satisfy constraint: "
            "Member must satisfy enum value set: [SYSTEM_DEFINED, APPLICATION]",
        ),
        (
            {"maxResults": 0},
            "1 validation error detected: Value '0' at 'maxResults' failed to satisfy constraint: "
            "Member must have value greater than or equal to 1",
        ),
    ],
    ids=["bad-type", "max-results-zero"],
)
def test_list_profiles_validation_errors(control: Boto, query: dict[str, Any], message: str) -> None:
    assert bedrock_error(control("ListInferenceProfiles", **query)) == (
        400,
        "ValidationException",
        {"message": message},
    )


@pytest.mark.parametrize(
    ("identifier", "geo", "regions"),
    [
        (f"us.{SONNET_BASE}", "us", US),
        (f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{SONNET_BASE}", "us", US),
        (f"global.{SONNET_BASE}", "global", EVERYWHERE),
    ],
    ids=["us-id", "us-arn", "global-id"],
)
def test_get_system_profile(control: Boto, account: str, identifier: str, geo: str, regions: tuple[str, ...]) -> None:
    assert ok(control("GetInferenceProfile", inferenceProfileIdentifier=identifier)) == sonnet_profile(
        account, geo, regions
    )


def test_get_unknown_profile_is_not_found(control: Boto) -> None:
    response = control("GetInferenceProfile", inferenceProfileIdentifier="abcdefghijkl")

    assert bedrock_error(response) == (
        404,
        "ResourceNotFoundException",
        {"message": "Inference profile abcdefghijkl does not exist."},
    )


def create_profile(control: Boto, name: str = "team-a", copy_from: str | None = None, **extra: Any) -> str:
    source = copy_from or f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{SONNET_BASE}"
    body = ok(
        control("CreateInferenceProfile", inferenceProfileName=name, modelSource={"copyFrom": source}, **extra), 201
    )
    arn: str = masked(
        body, "inferenceProfileArn", r"arn:aws:bedrock:us-east-1:\d{12}:application-inference-profile/[a-z0-9]{12}"
    )
    assert body == {"inferenceProfileArn": "<inferenceProfileArn>", "status": "ACTIVE"}
    return arn


def application_profile(arn: str, account: str, regions: tuple[str, ...], **extra: Any) -> dict[str, Any]:
    profile_id = arn.rsplit("/", 1)[1]
    assert arn == f"arn:aws:bedrock:us-east-1:{account}:application-inference-profile/{profile_id}"
    return {
        "inferenceProfileName": "team-a",
        "createdAt": "<createdAt>",
        "updatedAt": "<updatedAt>",
        "inferenceProfileArn": arn,
        "models": fm_arns(SONNET_BASE, regions),
        "inferenceProfileId": profile_id,
        "status": "ACTIVE",
        "type": "APPLICATION",
    } | extra


def without_times(profile: dict[str, Any]) -> dict[str, Any]:
    created = masked(profile, "createdAt", ISO_SECONDS)
    assert masked(profile, "updatedAt", ISO_SECONDS) == created
    return profile


def test_create_then_get_and_list_an_application_profile(control: Boto, account: str) -> None:
    arn = create_profile(control, clientRequestToken="token-1", description="Team A")
    expected = application_profile(arn, account, US, description="Team A")
    profile_id = arn.rsplit("/", 1)[1]
    assert re.fullmatch(APP_PROFILE_ID, profile_id)

    by_arn = ok(control("GetInferenceProfile", inferenceProfileIdentifier=arn))
    by_id = ok(control("GetInferenceProfile", inferenceProfileIdentifier=profile_id))
    listed = ok(control("ListInferenceProfiles", typeEquals="APPLICATION"))

    assert without_times(by_arn) == expected
    assert without_times(by_id) == expected
    assert [without_times(p) for p in listed["inferenceProfileSummaries"]] == [expected]


def test_a_profile_copied_from_a_foundation_model_has_one_region(control: Boto, account: str) -> None:
    arn = create_profile(control, copy_from=SONNET_FM_ARN)

    profile = ok(control("GetInferenceProfile", inferenceProfileIdentifier=arn))

    assert without_times(profile) == application_profile(arn, account, ("us-east-1",))


def test_an_application_profile_is_callable_by_its_arn(runtime: Boto, control: Boto) -> None:
    arn = create_profile(control, copy_from=SONNET_FM_ARN)
    content = [{"text": "0123456789" * 110}, {"cachePoint": {"type": "default"}}, {"text": "Q?"}]

    responses = [
        runtime(
            "Converse", modelId=arn, messages=[{"role": "user", "content": content}], inferenceConfig={"maxTokens": 2}
        )
        for _ in range(2)
    ]

    assert [r.status_code for r in responses] == [200, 200]
    assert [r.headers["x-cachepoint-cache"] for r in responses] == ["written:1106:5m:new", "hit:1106:5m:ram"]
    assert [r.json()["usage"]["cacheReadInputTokens"] for r in responses] == [0, 1106]


def test_list_application_profiles_when_there_are_none(control: Boto) -> None:
    assert ok(control("ListInferenceProfiles", typeEquals="APPLICATION")) == {"inferenceProfileSummaries": []}


def test_create_profile_with_a_taken_name_conflicts(control: Boto) -> None:
    create_profile(control)

    response = control("CreateInferenceProfile", inferenceProfileName="team-a", modelSource={"copyFrom": SONNET_FM_ARN})

    assert bedrock_error(response) == (
        400,
        "ConflictException",
        {"message": "An inference profile named team-a already exists."},
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"inferenceProfileName": "team-a"},
            "1 validation error detected: Value null at 'modelSource' failed to satisfy constraint: Member must not be null",
        ),
        (
            {"inferenceProfileName": "team-a", "modelSource": {"copyFrom": SONNET_BASE}},
            f"The provided model source {SONNET_BASE} is invalid. The provided model identifier is invalid.",
        ),
        (
            {"inferenceProfileName": "team a!", "modelSource": {"copyFrom": SONNET_FM_ARN}},
            "1 validation error detected: Value 'team a!' at 'inferenceProfileName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: ([0-9a-zA-Z][ _-]?)+",
        ),
    ],
    ids=["missing-model-source", "source-not-an-arn", "name-pattern"],
)
def test_create_profile_validation_errors(control: Boto, fields: dict[str, Any], message: str) -> None:
    assert bedrock_error(control("CreateInferenceProfile", **fields)) == (
        400,
        "ValidationException",
        {"message": message},
    )


def test_delete_an_application_profile(control: Boto) -> None:
    arn = create_profile(control)
    profile_id = arn.rsplit("/", 1)[1]

    assert ok(control("DeleteInferenceProfile", inferenceProfileIdentifier=arn)) == {}

    gone = control("GetInferenceProfile", inferenceProfileIdentifier=arn)
    assert bedrock_error(gone) == (
        404,
        "ResourceNotFoundException",
        {"message": f"Inference profile {arn} does not exist."},
    )
    again = control("DeleteInferenceProfile", inferenceProfileIdentifier=profile_id)
    assert bedrock_error(again) == (
        404,
        "ResourceNotFoundException",
        {"message": f"Inference profile {profile_id} not found."},
    )


def test_delete_a_system_profile_is_refused(control: Boto) -> None:
    response = control("DeleteInferenceProfile", inferenceProfileIdentifier=f"us.{SONNET_BASE}")

    assert bedrock_error(response) == (
        400,
        "ValidationException",
        {"message": "System-defined inference profiles cannot be deleted."},
    )


def test_get_profile_by_an_arn_with_encoded_slash(control: Boto, account: str) -> None:
    """boto3 sends the ARN as one path segment, `:` as %3A and `/` as %2F (spelt out here once)."""
    arn = create_profile(control)
    path = "/inference-profiles/" + quote(arn, safe="")
    assert path.endswith("%3Aapplication-inference-profile%2F" + arn.rsplit("/", 1)[1])

    response = control.client.get(path, headers=sigv4_headers())

    assert without_times(ok(response)) == application_profile(arn, account, US)


# -- tags -----------------------------------------------------------------------------------------------------------


def tags_of(control: Boto, arn: str) -> Any:
    return ok(control("ListTagsForResource", resourceARN=arn))


def test_tag_untag_and_list_tags(control: Boto) -> None:
    arn = create_profile(control, tags=[{"key": "team", "value": "a"}])
    assert tags_of(control, arn) == {"tags": [{"key": "team", "value": "a"}]}

    assert (
        ok(
            control(
                "TagResource", resourceARN=arn, tags=[{"key": "team", "value": "b"}, {"key": "env", "value": "dev"}]
            )
        )
        == {}
    )
    assert tags_of(control, arn) == {"tags": [{"key": "env", "value": "dev"}, {"key": "team", "value": "b"}]}

    assert ok(control("UntagResource", resourceARN=arn, tagKeys=["team"])) == {}
    assert tags_of(control, arn) == {"tags": [{"key": "env", "value": "dev"}]}


def test_tags_go_with_a_deleted_profile(control: Boto) -> None:
    arn = create_profile(control, tags=[{"key": "team", "value": "a"}])
    ok(control("DeleteInferenceProfile", inferenceProfileIdentifier=arn))

    response = control("ListTagsForResource", resourceARN=arn)

    assert bedrock_error(response) == (404, "ResourceNotFoundException", {"message": f"Resource {arn} does not exist."})


@pytest.mark.parametrize(
    ("operation", "fields", "status", "code", "message"),
    [
        (
            "TagResource",
            {"resourceARN": "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abcdefghijkl"},
            400,
            "ValidationException",
            "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null",
        ),
        (
            "UntagResource",
            {"resourceARN": "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abcdefghijkl"},
            400,
            "ValidationException",
            "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null",
        ),
        (
            "ListTagsForResource",
            {},
            400,
            "ValidationException",
            "1 validation error detected: Value null at 'resourceARN' failed to satisfy constraint: Member must not be null",
        ),
        (
            "TagResource",
            {"resourceARN": SONNET_FM_ARN, "tags": [{"key": "k", "value": "v"}]},
            400,
            "ValidationException",
            "Only application inference profiles can be tagged.",
        ),
        (
            "ListTagsForResource",
            {"resourceARN": "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abcdefghijkl"},
            404,
            "ResourceNotFoundException",
            "Resource arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abcdefghijkl does not exist.",
        ),
    ],
    ids=["tag-without-tags", "untag-without-keys", "list-without-arn", "tag-a-foundation-model", "unknown-profile"],
)
def test_tag_errors(
    control: Boto, operation: str, fields: dict[str, Any], status: int, code: str, message: str
) -> None:
    assert bedrock_error(control(operation, **fields)) == (status, code, {"message": message})


# -- model-invocation logging configuration -----------------------------------------------------------------------------

LOGGING_CONFIG = {
    "s3Config": {"bucketName": "my-bedrock-logs", "keyPrefix": "team-a"},
    "textDataDeliveryEnabled": True,
    "imageDataDeliveryEnabled": False,
    "embeddingDataDeliveryEnabled": False,
}


def test_put_get_delete_logging_configuration(control: Boto) -> None:
    assert ok(control("GetModelInvocationLoggingConfiguration")) == {}

    assert ok(control("PutModelInvocationLoggingConfiguration", loggingConfig=LOGGING_CONFIG)) == {}
    assert ok(control("GetModelInvocationLoggingConfiguration")) == {"loggingConfig": LOGGING_CONFIG}

    assert ok(control("DeleteModelInvocationLoggingConfiguration")) == {}
    assert ok(control("GetModelInvocationLoggingConfiguration")) == {}


def test_logging_configuration_belongs_to_the_callers_account(control: Boto) -> None:
    ok(control("PutModelInvocationLoggingConfiguration", loggingConfig=LOGGING_CONFIG))

    other = Boto(control.client, "bedrock", access_key="AKIDOTHER")

    assert ok(other("GetModelInvocationLoggingConfiguration")) == {}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {},
            "1 validation error detected: Value null at 'loggingConfig' failed to satisfy constraint: Member must not be null",
        ),
        (
            {"loggingConfig": {"s3Config": {"bucketName": "ab"}}},
            "1 validation error detected: Value 'ab' at 'loggingConfig.s3Config.bucketName' failed to satisfy "
            "constraint: Member must have length greater than or equal to 3",
        ),
    ],
    ids=["missing-config", "bucket-name-too-short"],
)
def test_put_logging_validation_errors(control: Boto, fields: dict[str, Any], message: str) -> None:
    response = control("PutModelInvocationLoggingConfiguration", **fields)

    assert bedrock_error(response) == (400, "ValidationException", {"message": message})
