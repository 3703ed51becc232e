"""Strict authentication, isolation between accounts, and admission limits, with the real clients."""

from __future__ import annotations

import gzip
import json
import subprocess
import threading
import time
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import anthropic
import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from cachepoint.auth.authenticator import AuthSettings
from cachepoint.auth.sigv4 import Secret
from cachepoint.bootstrap import build_services
from cachepoint.clock import FakeClock
from cachepoint.engine.fake import FakeEngine
from cachepoint.routing.profiles import ProfileStore
from cachepoint.settings import EngineSettings, Limits, Settings
from tests.live import LiveServer, serve

SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
ALICE, BOB = ("AKIDALICE", "alice-secret", "111111111111"), ("AKIDBOB", "bob-secret", "222222222222")
MESSAGES = [{"role": "user", "content": [{"text": "hello"}]}]


def strict_services(clock: FakeClock) -> Any:
    auth = AuthSettings(
        mode="strict",
        credentials={ALICE[0]: Secret(ALICE[1], ALICE[2]), BOB[0]: Secret(BOB[1], BOB[2])},
        tokens={"alice-token": ALICE[2], "sk-alice": ALICE[2]},
    )
    settings = Settings(engines={"default": EngineSettings("default", kind="fake")}, auth=auth,
                        limits=Limits(max_body_bytes=200_000, max_concurrent_per_account=2, max_blocks=50))  # fmt: skip
    engine = FakeEngine(output_tokens=40)
    return build_services(settings, engine_factory=lambda _: engine, clock=clock, profiles=ProfileStore(":memory:"))


@pytest.fixture(scope="module")
def strict() -> Iterator[tuple[LiveServer, FakeClock]]:
    clock = FakeClock(start_s=time.time())
    with serve(strict_services(clock)) as server:
        yield server, clock


def client(url: str, key: str, secret: str, service: str = "bedrock-runtime") -> Any:
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"total_max_attempts": 1}))  # fmt: skip


def code_of(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def test_sigv4_right_and_wrong_secrets(strict: tuple[LiveServer, FakeClock]) -> None:
    server, _ = strict
    assert client(server.url, *ALICE[:2]).converse(modelId=SONNET, messages=MESSAGES)["usage"]["outputTokens"] > 0
    code, message = code_of(lambda: client(server.url, ALICE[0], "wrong").converse(modelId=SONNET, messages=MESSAGES))
    assert code == "InvalidSignatureException" and message.startswith(
        "The request signature we calculated does not match"
    )
    code, message = code_of(lambda: client(server.url, "AKIDNOBODY", "x").converse(modelId=SONNET, messages=MESSAGES))
    assert (code, message) == ("UnrecognizedClientException", "The security token included in the request is invalid.")


def test_tampered_body_and_missing_credentials(strict: tuple[LiveServer, FakeClock]) -> None:
    server, _ = strict
    url = f"{server.url}/model/{SONNET.replace(':', '%3A')}/converse"
    body = json.dumps({"messages": MESSAGES}).encode()
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(*ALICE[:2]), "bedrock", "us-east-1").add_auth(request)
    ok = httpx.post(url, content=body, headers=dict(request.headers))
    assert ok.status_code == 200, ok.text
    tampered = httpx.post(url, content=body.replace(b"hello", b"HELLO"), headers=dict(request.headers))
    assert tampered.status_code == 403 and tampered.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    anonymous = httpx.post(url, content=body)
    assert (
        anonymous.status_code == 403 and anonymous.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    )


def test_replay_outside_the_skew_window(strict: tuple[LiveServer, FakeClock]) -> None:
    server, clock = strict
    clock.tick(600)  # the server's clock runs 10 minutes ahead of the signer's
    try:
        code, message = code_of(lambda: client(server.url, *ALICE[:2]).converse(modelId=SONNET, messages=MESSAGES))
        assert code == "InvalidSignatureException" and message.startswith("Signature expired:")
    finally:
        clock.tick(-600)


def test_bearer_tokens_for_bedrock_and_anthropic(
    strict: tuple[LiveServer, FakeClock], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server, _ = strict
    # boto3 sends a bearer token only over HTTPS: the same services behind a TLS listener
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)  # fmt: skip
    with serve(strict_services(FakeClock(start_s=time.time())), ssl_certfile=str(cert), ssl_keyfile=str(key)) as tls:
        for token, expected in (("alice-token", None), ("stolen", "UnrecognizedClientException")):
            monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", token)
            bearer = boto3.client("bedrock-runtime", endpoint_url=tls.url, region_name="us-east-1", verify=False)
            if expected is None:
                assert bearer.converse(modelId=SONNET, messages=MESSAGES)["usage"]["outputTokens"] > 0
            else:
                assert code_of(lambda b=bearer: b.converse(modelId=SONNET, messages=MESSAGES))[0] == expected
    good = anthropic.Anthropic(base_url=server.url, api_key="sk-alice", max_retries=0)
    assert good.messages.create(
        model="claude-sonnet-4-6", max_tokens=3, messages=[{"role": "user", "content": "hi"}]
    ).usage
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=server.url, api_key="sk-nope", max_retries=0).messages.create(
            model="claude-sonnet-4-6", max_tokens=3, messages=[{"role": "user", "content": "hi"}]
        )


def test_anthropic_bedrock_signing_verifies(strict: tuple[LiveServer, FakeClock]) -> None:
    server, _ = strict
    sdk = anthropic.AnthropicBedrock(base_url=server.url, aws_region="us-east-1", aws_access_key=ALICE[0],
                                     aws_secret_key=ALICE[1], max_retries=0)  # fmt: skip
    assert (
        sdk.messages.create(
            model=SONNET, max_tokens=3, messages=[{"role": "user", "content": "hi"}]
        ).usage.output_tokens
        > 0
    )


def test_accounts_never_see_each_others_prefixes_or_profiles(strict: tuple[LiveServer, FakeClock]) -> None:
    server, _ = strict
    system = [{"text": "secret plan " * 120}, {"cachePoint": {"type": "default"}}]
    alice, bob = client(server.url, *ALICE[:2]), client(server.url, *BOB[:2])
    written = alice.converse(modelId=SONNET, system=system, messages=MESSAGES)["usage"]["cacheWriteInputTokens"]
    assert written > 1024
    assert bob.converse(modelId=SONNET, system=system, messages=MESSAGES)["usage"]["cacheReadInputTokens"] == 0
    assert alice.converse(modelId=SONNET, system=system, messages=MESSAGES)["usage"]["cacheReadInputTokens"] == written
    assert server.services.telemetry.flush()
    logs = server.services.settings.log_dir / "AWSLogs"
    assert {p.name for p in logs.iterdir()} >= {ALICE[2], BOB[2]}  # each account's records under its own prefix
    for account in (ALICE[2], BOB[2]):
        for path in (logs / account).rglob("*.json.gz"):
            assert all(
                json.loads(line)["accountId"] == account for line in gzip.decompress(path.read_bytes()).splitlines()
            )
    source = f"arn:aws:bedrock:us-east-1::foundation-model/{SONNET.removeprefix('us.')}"
    alice_cp, bob_cp = (
        client(server.url, *ALICE[:2], service="bedrock"),
        client(server.url, *BOB[:2], service="bedrock"),
    )
    arn = alice_cp.create_inference_profile(inferenceProfileName="alice-only", modelSource={"copyFrom": source})[
        "inferenceProfileArn"
    ]
    assert bob_cp.list_inference_profiles(typeEquals="APPLICATION")["inferenceProfileSummaries"] == []
    assert (
        code_of(lambda: bob_cp.get_inference_profile(inferenceProfileIdentifier=arn))[0] == "ResourceNotFoundException"
    )
    assert code_of(lambda: bob_cp.list_tags_for_resource(resourceARN=arn))[0] == "ResourceNotFoundException"


def test_body_size_and_block_count_limits(strict: tuple[LiveServer, FakeClock]) -> None:
    server, _ = strict
    many = [{"role": "user", "content": [{"text": f"b{i}"} for i in range(60)]}]
    code, message = code_of(lambda: client(server.url, *ALICE[:2]).converse(modelId=SONNET, messages=many))
    assert (code, message) == ("ValidationException", "The request has 60 content blocks; the maximum is 50.")
    huge = [{"role": "user", "content": [{"text": "x" * 300_000}]}]
    code, message = code_of(lambda: client(server.url, *ALICE[:2]).converse(modelId=SONNET, messages=huge))
    assert code == "ValidationException" and "exceeds the maximum of 200000 bytes" in message
    raw = httpx.post(f"{server.url}/v1/messages", content=b"x" * 300_000, headers={"x-api-key": "sk-alice"})
    assert raw.status_code == 413 and raw.json()["error"]["type"] == "request_too_large"


def test_per_account_concurrency_is_throttled_and_nothing_hangs(strict: tuple[LiveServer, FakeClock]) -> None:
    server, _ = strict
    engine_gate = threading.Event()
    pool = server.services.inference.pools["default"]
    engine = pool.tokenizer
    original = engine.run

    def slow_run(job: Any) -> Any:
        engine_gate.wait(10)
        yield from original(job)

    engine.run = slow_run  # type: ignore[method-assign]
    results: list[Any] = []
    alice = client(server.url, *ALICE[:2])
    threads = [
        threading.Thread(target=lambda: results.append(alice.converse(modelId=SONNET, messages=MESSAGES)))
        for _ in range(2)
    ]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 5
        while sum(w.num_jobs for w in pool.workers().values()) < 2:  # the profile spreads them over Regions
            assert time.monotonic() < deadline
            time.sleep(0.01)
        code, message = code_of(lambda: alice.converse(modelId=SONNET, messages=MESSAGES))
        assert (code, message) == ("ThrottlingException", "Too many requests, please wait before trying again.")
        assert client(server.url, *BOB[:2]).converse(modelId=SONNET, messages=MESSAGES)  # other accounts are unaffected
    finally:
        engine_gate.set()
        for t in threads:
            t.join(10)
        engine.run = original  # type: ignore[method-assign]
    assert len(results) == 2
