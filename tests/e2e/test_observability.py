"""Logs and metrics of a run of requests: records validate against the schema and agree with the responses."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from prometheus_client.parser import text_string_to_metric_families

from cachepoint.bootstrap import build_services
from cachepoint.engine.fake import FakeEngine
from cachepoint.routing.profiles import ProfileStore
from cachepoint.settings import EngineSettings, LoggingSettings, Settings
from tests.live import LiveServer, serve

SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
CP = {"cachePoint": {"type": "default"}}
REQUIRED = {"schemaType": str, "schemaVersion": str, "timestamp": str, "accountId": str, "identity": dict, "region": str,
            "requestId": str, "operation": str, "modelId": str, "input": dict}  # fmt: skip


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    logs = tmp_path_factory.mktemp("logs")
    settings = Settings(
        engines={"default": EngineSettings("default", kind="fake")}, logging=LoggingSettings(dir=logs, fsync=False)
    )
    with serve(
        build_services(settings, engine_factory=lambda _: FakeEngine(), profiles=ProfileStore(":memory:"))
    ) as server:
        yield server, logs


def read_records(root: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted(root.rglob("*.json.gz")):
        if "/data/" not in str(path):
            records += [json.loads(line) for line in gzip.decompress(path.read_bytes()).decode().splitlines()]
    return records


def validate(record: dict[str, Any]) -> None:
    for key, kind in REQUIRED.items():
        assert isinstance(record[key], kind), key
    assert record["schemaType"] == "ModelInvocationLog" and record["schemaVersion"] == "1.0"
    assert isinstance(record["input"]["inputTokenCount"], int)
    assert ("output" in record) != ("errorCode" in record)


def test_records_and_metrics_agree_with_the_responses(logged: tuple[LiveServer, Path]) -> None:
    server, root = logged
    runtime = boto3.client("bedrock-runtime", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="AKIDLOG",
                           aws_secret_access_key="x", config=Config(retries={"total_max_attempts": 1}))  # fmt: skip
    doc = "ledger " * 200
    usages = []
    for question in ("a?", "b?"):
        response = runtime.converse(
            modelId=SONNET, system=[{"text": doc}, CP], messages=[{"role": "user", "content": [{"text": question}]}],
            requestMetadata={"team": "blue"},
        )  # fmt: skip
        usages.append(("Converse", response["ResponseMetadata"]["RequestId"], response["usage"]))
    stream = runtime.converse_stream(
        modelId=SONNET, system=[{"text": doc}, CP], messages=[{"role": "user", "content": [{"text": "c?"}]}]
    )
    events = list(stream["stream"])
    usages.append(("ConverseStream", stream["ResponseMetadata"]["RequestId"], events[-1]["metadata"]["usage"]))
    big = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "x" * 3000}],
    }
    invoked = runtime.invoke_model(modelId=SONNET, body=json.dumps(big), requestMetadata=json.dumps({"team": "red"}))
    body = json.loads(invoked["body"].read())
    usages.append(("InvokeModel", invoked["ResponseMetadata"]["RequestId"], {"inputTokens": body["usage"]["input_tokens"],
                   "outputTokens": body["usage"]["output_tokens"]}))  # fmt: skip
    with pytest.raises(runtime.exceptions.ValidationException):
        runtime.converse(modelId=SONNET, messages=[])

    assert server.services.telemetry.flush()
    records = {r["requestId"]: r for r in read_records(root)}
    assert len(records) == 5
    for record in records.values():
        validate(record)
    for operation, request_id, usage in usages:
        record = records[request_id]
        assert record["operation"] == operation
        assert record["input"]["inputTokenCount"] == usage["inputTokens"]
        assert record["output"]["outputTokenCount"] == usage["outputTokens"]
        assert record["input"].get("cacheReadInputTokenCount", 0) == usage.get("cacheReadInputTokens", 0)
        assert record["input"].get("cacheWriteInputTokenCount", 0) == usage.get("cacheWriteInputTokens", 0)
    first = records[usages[0][1]]
    assert first["requestMetadata"] == {"team": "blue"} and first["cachepoint"]["checkpoints"][0].startswith("written:")
    assert first["input"]["inputBodyJson"]["system"][1] == CP
    assert records[usages[2][1]]["output"]["outputBodyJson"]["usage"] == usages[2][2]  # the stream's aggregate
    assert records[usages[3][1]]["requestMetadata"] == {"team": "red"}  # InvokeModel's metadata header
    failed = next(r for r in records.values() if "errorCode" in r)
    assert failed["errorCode"] == "ValidationException" and failed["operation"] == "Converse"

    text = httpx.get(f"{server.url}/metrics").text
    samples = {
        (s.name, s.labels.get("ModelId")): s.value for f in text_string_to_metric_families(text) for s in f.samples
    }
    assert samples[("Invocations_total", SONNET)] == 5
    assert samples[("InvocationClientErrors_total", SONNET)] == 1
    assert samples[("InputTokenCount_total", SONNET)] == sum(u["inputTokens"] for _, _, u in usages)
    assert samples[("OutputTokenCount_total", SONNET)] == sum(u["outputTokens"] for _, _, u in usages)
    assert samples[("CacheReadInputTokenCount_total", SONNET)] == sum(
        u.get("cacheReadInputTokens", 0) for _, _, u in usages
    )
    assert samples[("CacheWriteInputTokenCount_total", SONNET)] == sum(
        u.get("cacheWriteInputTokens", 0) for _, _, u in usages
    )
    assert samples[("TimeToFirstToken_count", SONNET)] == 1  # streaming calls only
    assert any(name == "cachepoint_cache_bytes" and value > 0 for (name, _), value in samples.items())
    with pytest.raises(runtime.exceptions.ValidationException, match="X-Amzn-Bedrock-Request-Metadata header must"):
        runtime.invoke_model(modelId=SONNET, body=json.dumps(big), requestMetadata='{"team": ["not", "a string"]}')


def test_large_bodies_are_offloaded_and_text_delivery_can_be_off(tmp_path: Path) -> None:
    for text_delivery in (True, False):
        root = tmp_path / str(text_delivery)
        settings = Settings(engines={"default": EngineSettings("default", kind="fake", context_tokens=200_000)},
                            logging=LoggingSettings(dir=root, text_data_delivery=text_delivery, fsync=False),
                            state_dir=root / "state")  # fmt: skip  # its own disk tier: nothing cached before
        with serve(
            build_services(
                settings, engine_factory=lambda _: FakeEngine(context_tokens=200_000), profiles=ProfileStore(":memory:")
            )
        ) as server:
            big = {
                "messages": [{"role": "user", "content": [{"text": "y" * 120_000}]}],
                "inferenceConfig": {"maxTokens": 2},
            }
            assert httpx.post(f"{server.url}/model/{SONNET}/converse", json=big, timeout=60).status_code == 200
        (record,) = read_records(root)
        if text_delivery:
            path = record["input"]["inputBodyS3Path"]
            assert "inputBodyJson" not in record["input"] and path.endswith("_input.json.gz")
            local = next(root.rglob(Path(path).name))
            assert json.loads(gzip.decompress(local.read_bytes()))["messages"][0]["content"][0]["text"] == "y" * 120_000
        else:
            assert set(record["input"]) == {"inputContentType", "inputTokenCount"}
            assert record["output"]["outputTokenCount"] == 2


def test_an_account_controls_its_own_logging(logged: tuple[LiveServer, Path]) -> None:
    server, root = logged
    make = lambda service: boto3.client(service, endpoint_url=server.url, region_name="us-east-1",  # noqa: E731
                                        aws_access_key_id="AKIDLOGCFG", aws_secret_access_key="x")  # fmt: skip
    control, runtime = make("bedrock"), make("bedrock-runtime")
    assert "loggingConfig" not in control.get_model_invocation_logging_configuration()

    def ask(text: str) -> str:
        response = runtime.converse(modelId=SONNET, messages=[{"role": "user", "content": [{"text": text}]}])
        return str(response["ResponseMetadata"]["RequestId"])

    config = {"s3Config": {"bucketName": "my-bucket", "keyPrefix": "bedrock"}, "textDataDeliveryEnabled": False}
    control.put_model_invocation_logging_configuration(loggingConfig=config)
    assert control.get_model_invocation_logging_configuration()["loggingConfig"] == config
    counts_only = ask("no body please")
    control.delete_model_invocation_logging_configuration()
    not_logged = ask("not logged at all")
    assert server.services.telemetry.flush()
    records = {r["requestId"]: r for r in read_records(root)}
    assert "inputBodyJson" not in records[counts_only]["input"] and records[counts_only]["input"]["inputTokenCount"] > 0
    assert not_logged not in records
    assert "loggingConfig" not in control.get_model_invocation_logging_configuration()
