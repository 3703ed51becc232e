"""Log delivery to an S3-compatible bucket (moto's server over real HTTP), and the doctor reading s3://."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from cachepoint.__main__ import main
from cachepoint.bootstrap import build_services
from cachepoint.engine.fake import FakeEngine
from cachepoint.routing.profiles import ProfileStore
from cachepoint.settings import EngineSettings, LoggingSettings, Settings
from tests.live import free_port, serve

KEY = re.compile(
    r"^archive/AWSLogs/\d{12}/BedrockModelInvocationLogs/us-east-1/\d{4}/\d{2}/\d{2}/\d{2}/\d{8}T\d{6}Z_[0-9a-f-]{36}\.json\.gz$"
)


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    for name, value in {"AWS_ACCESS_KEY_ID": "moto", "AWS_SECRET_ACCESS_KEY": "moto", "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_ENDPOINT_URL_S3": url}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    boto3.client("s3").create_bucket(Bucket="invocation-logs")
    yield url
    server.stop()


def test_records_reach_the_bucket_and_the_doctor_reads_them(
    s3_endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logging = LoggingSettings(
        dir=tmp_path, s3_bucket="invocation-logs", s3_prefix="archive/", s3_endpoint_url=s3_endpoint, fsync=False
    )
    settings = Settings(engines={"default": EngineSettings("default", kind="fake")}, logging=logging)
    with serve(
        build_services(settings, engine_factory=lambda _: FakeEngine(), profiles=ProfileStore(":memory:"))
    ) as server:
        runtime = boto3.client(
            "bedrock-runtime", endpoint_url=server.url, aws_access_key_id="AKIDS3", aws_secret_access_key="x"
        )
        for question in ("a?", "b?"):
            runtime.converse(
                modelId="us.anthropic.claude-sonnet-4-5-20250929-v1:0",
                system=[{"text": "ledger " * 300}, {"cachePoint": {"type": "default"}}],
                messages=[{"role": "user", "content": [{"text": question}]}],
            )
    # the server has shut down: its last batch is delivered
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="invocation-logs")["Contents"]]
    assert len(keys) == 1 and KEY.match(keys[0]), keys
    assert main(["doctor", "s3://invocation-logs/archive/"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 requests; cache hit rate 50.0%") and "hit 1" in out
