"""Implicit prompt caching on the real model, through boto3 and the AWS CLI: a long prompt without any
`cachePoint` is read back on its repeat, reported as Bedrock reports cached tokens, and the write is not billed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from tests.e2e.test_caching import SONNET, document
from tests.live import LiveServer


def test_boto3_an_unmarked_prompt_is_read_on_its_repeat(client_for: Callable[..., Any]) -> None:
    runtime = client_for("AKIDIMPLICIT")
    system = [{"text": document("implicit")}]

    def ask() -> Any:
        return runtime.converse(modelId=SONNET, system=system, inferenceConfig={"maxTokens": 3, "temperature": 0},
                                messages=[{"role": "user", "content": [{"text": "Which week?"}]}])  # fmt: skip

    first, second = ask(), ask()
    assert "cacheWriteInputTokens" not in first["usage"] and "cacheReadInputTokens" not in first["usage"]
    read = second["usage"]["cacheReadInputTokens"]
    assert read > 1024 and second["usage"]["cacheWriteInputTokens"] == 0
    assert second["usage"]["inputTokens"] + read == first["usage"]["inputTokens"]
    assert second["ResponseMetadata"]["HTTPHeaders"]["x-cachepoint-cache"].startswith(f"hit:{read}:implicit:")
    assert second["output"] == first["output"]  # the restored prefix answers as the computed one did


def test_the_aws_cli_reports_the_implicit_read(live: LiveServer) -> None:
    env = os.environ | {"AWS_ACCESS_KEY_ID": "AKIDIMPLICITCLI", "AWS_SECRET_ACCESS_KEY": "x",
                        "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
    command = [sys.executable, "-m", "awscli", "bedrock-runtime", "converse", "--endpoint-url", live.url,
               "--output", "json", "--model-id", SONNET, "--inference-config", '{"maxTokens": 3}',
               "--system", json.dumps([{"text": document("implicit-cli")}]),
               "--messages", json.dumps([{"role": "user", "content": [{"text": "Which week?"}]}])]  # fmt: skip
    runs = [subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=True) for _ in range(2)]
    usages = [json.loads(r.stdout)["usage"] for r in runs]
    assert "cacheReadInputTokens" not in usages[0]
    assert usages[1]["cacheReadInputTokens"] > 1024 and usages[1]["cacheWriteInputTokens"] == 0
