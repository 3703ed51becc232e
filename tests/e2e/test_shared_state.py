"""Two gateways, each its own `cachepoint serve` process, sharing one PostgreSQL (`[state] url`): an
application profile, its tags and an account's logging configuration made through one are used through the
other. Real HTTP, real PostgreSQL (scripts/services.sh), the AWS SDK on both sides; the fake engine, since
the model is not what this tests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.process import FAKE_ENGINE, ServerProcess, serving

SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"


def client(server: ServerProcess, service: str) -> Any:
    return boto3.client(service, endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="AKIDSHARED",
                        aws_secret_access_key="x", config=Config(retries={"total_max_attempts": 1}))  # fmt: skip


def test_gateways_share_profiles_tags_and_logging_settings(tmp_path: Path, postgres_url: str) -> None:
    config = FAKE_ENGINE + f'[state]\nurl = "{postgres_url}"\n'
    for gateway in ("a", "b"):
        (tmp_path / gateway).mkdir()
    with serving(tmp_path / "a", config) as a, serving(tmp_path / "b", config) as b:
        source = f"arn:aws:bedrock:us-east-1::foundation-model/{SONNET}"
        created = client(a, "bedrock").create_inference_profile(
            inferenceProfileName="shared", modelSource={"copyFrom": source}, tags=[{"key": "team", "value": "a"}]
        )
        arn = created["inferenceProfileArn"]
        through_b = client(b, "bedrock").get_inference_profile(inferenceProfileIdentifier=arn)
        assert through_b["inferenceProfileName"] == "shared" and through_b["type"] == "APPLICATION"
        assert client(b, "bedrock").list_tags_for_resource(resourceARN=arn)["tags"] == [{"key": "team", "value": "a"}]
        answer = client(b, "bedrock-runtime").converse(
            modelId=arn, messages=[{"role": "user", "content": [{"text": "Hello"}]}], inferenceConfig={"maxTokens": 4}
        )
        assert answer["stopReason"] in ("max_tokens", "end_turn") and answer["usage"]["outputTokens"] > 0

        client(a, "bedrock").delete_inference_profile(inferenceProfileIdentifier=arn)
        time.sleep(2.5)  # B's cached read of the profile lasts READ_TTL_S
        names = [
            p["inferenceProfileName"]
            for p in client(b, "bedrock").list_inference_profiles(typeEquals="APPLICATION")["inferenceProfileSummaries"]
        ]
        assert names == []
        gone = client(b, "bedrock-runtime")
        with pytest.raises(gone.exceptions.ValidationException, match="The provided model identifier is invalid."):
            gone.converse(modelId=arn, messages=[{"role": "user", "content": [{"text": "Hello"}]}])
    assert not (tmp_path / "a" / "state" / "profiles.sqlite").exists(), "no local state file with [state] url"
