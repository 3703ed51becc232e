"""The real `cachepoint serve` process: SIGTERM drains the request in flight and flushes its log record;
a restart keeps every written record and application profile."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from tests.live import free_port

SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"


def start(config: Path, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-m", "cachepoint", "serve", "--config", str(config), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


def records(root: Path) -> list[dict[str, Any]]:
    found = []
    for path in root.rglob("*.json.gz"):
        found += [json.loads(line) for line in gzip.decompress(path.read_bytes()).decode().splitlines()]
    return found


def test_sigterm_drains_and_a_restart_keeps_logs_and_profiles(tmp_path: Path) -> None:
    config = tmp_path / "cachepoint.toml"
    config.write_text(f'[server]\nstate_dir = "{tmp_path}"\n')
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    make = lambda service: boto3.client(service, endpoint_url=url, region_name="us-east-1", aws_access_key_id="AKIDLIFE",  # noqa: E731
                                        aws_secret_access_key="x", config=Config(retries={"total_max_attempts": 1}, read_timeout=120))  # fmt: skip
    server = start(config, port)
    source = f"arn:aws:bedrock:us-east-1::foundation-model/{SONNET.removeprefix('us.')}"
    arn = make("bedrock").create_inference_profile(inferenceProfileName="kept", modelSource={"copyFrom": source})[
        "inferenceProfileArn"
    ]
    outcome: dict[str, Any] = {}

    def long_call() -> None:
        response = make("bedrock-runtime").converse(
            modelId=SONNET, messages=[{"role": "user", "content": [{"text": "Tell a long story."}]}],
            inferenceConfig={"maxTokens": 300, "temperature": 0},
        )  # fmt: skip
        outcome["response"] = response

    caller = threading.Thread(target=long_call)
    caller.start()
    time.sleep(1.0)  # the request is being generated
    server.send_signal(signal.SIGTERM)
    caller.join(60)
    # uvicorn re-raises the signal after its graceful shutdown, so the exit status is the signal's
    assert server.wait(60) in (0, -signal.SIGTERM)
    response = outcome["response"]  # answered in full despite the shutdown
    assert response["usage"]["outputTokens"] > 0
    assert response["metrics"]["latencyMs"] > 1000  # it was still generating when the signal arrived
    logged = {r["requestId"]: r for r in records(tmp_path / "logs")}
    assert response["ResponseMetadata"]["RequestId"] in logged

    server = start(config, port)
    try:
        again = make("bedrock-runtime").converse(modelId=arn, messages=[{"role": "user", "content": [{"text": "Hi"}]}],
                                                 inferenceConfig={"maxTokens": 2})  # fmt: skip
        assert make("bedrock").get_inference_profile(inferenceProfileIdentifier=arn)["inferenceProfileName"] == "kept"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    after = {r["requestId"] for r in records(tmp_path / "logs")}
    assert set(logged) | {again["ResponseMetadata"]["RequestId"]} <= after
    assert os.path.exists(tmp_path / "profiles.sqlite")
