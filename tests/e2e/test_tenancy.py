"""What one tenant can learn about, or do to, another, and what the server keeps on disk.

- the invocation log names a token by its fingerprint, never the token; state is 0700 folders, 0600 files;
- operator endpoints need the operator's token in strict mode (tenants' credentials do not open them);
- one account's writes cannot evict another account's live cache entry (per-account share of the budget);
- metric labels stay bounded whatever model IDs are sent.
"""

from __future__ import annotations

import gzip
import json
import stat
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from cachepoint.auth.authenticator import fingerprint
from cachepoint.bootstrap import build_services
from cachepoint.engine.fake import FakeEngine
from cachepoint.routing.profiles import ProfileStore
from cachepoint.settings import EngineSettings, Settings
from tests.live import serve
from tests.process import FAKE_ENGINE, ServerProcess, serving

SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "hello"}]}]
STRICT = (
    FAKE_ENGINE
    + """
[auth]
mode = "strict"
operator_tokens = ["op-token"]
[auth.tokens]
"sk-bob-secret-token" = "222222222222"
"""
)
OPERATOR_PATHS = ["/metrics", "/dashboard/data", "/cachepoint/cache"]


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with serving(tmp_path_factory.mktemp("tenancy"), STRICT) as server:
        yield server


def bob(server: ServerProcess) -> Any:
    return boto3.client("bedrock-runtime", endpoint_url=server.url, region_name="us-east-1",
                        aws_access_key_id="unused", aws_secret_access_key="unused",  # noqa: S106
                        config=Config(retries={"total_max_attempts": 1}))  # fmt: skip


def test_operator_endpoints_need_the_operator_token(strict: ServerProcess) -> None:
    tenant = {"authorization": "Bearer sk-bob-secret-token"}
    operator = {"authorization": "Bearer op-token"}
    for path in OPERATOR_PATHS:
        for headers in ({}, tenant):
            refused = httpx.get(strict.url + path, headers=headers)
            assert refused.status_code == 403, path
            assert refused.json() == {"message": "This endpoint requires an operator token ([auth] operator_tokens)."}
        assert httpx.get(strict.url + path, headers=operator).status_code == 200, path
    assert httpx.get(f"{strict.url}/health").json() == {"status": "ok"}
    page = httpx.get(f"{strict.url}/dashboard")  # the static page: it shows nothing until given the token
    assert page.status_code == 200 and "<html" in page.text.lower()


def test_logs_name_a_token_by_its_fingerprint_and_state_is_private(tmp_path: Path) -> None:
    token = "sk-bob-secret-token"
    with serving(tmp_path, STRICT) as server:
        answer = httpx.post(f"{server.url}/model/{SONNET}/converse", json={"messages": MESSAGES},
                            headers={"authorization": f"Bearer {token}"})  # fmt: skip
        assert answer.status_code == 200
    files = [p for p in server.state_dir.rglob("*") if p.is_file()]
    logs = [p for p in files if p.name.endswith(".json.gz")]
    assert len(logs) == 1
    record = json.loads(gzip.decompress(logs[0].read_bytes()))
    assert record["identity"] == {"arn": f"arn:aws:iam::222222222222:user/{fingerprint(token)}"}
    assert all(token.encode() not in (gzip.decompress(p.read_bytes()) if p in logs else p.read_bytes()) for p in files)
    assert {p.name for p in files} >= {"profiles.sqlite"}
    for path in [server.state_dir, *server.state_dir.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


@pytest.mark.parametrize("ram_bytes, disk_bytes", [(120_000, 0), (40_000, 120_000)], ids=["ram-only", "ram-over-disk"])
def test_one_account_cannot_evict_another(tmp_path: Path, ram_bytes: int, disk_bytes: int) -> None:
    """The fake engine stores 4 bytes per token: a 120,000-byte budget holds 30,000 tokens, and each
    account may hold half of it while the other holds entries. Plain LRU would evict the victim first.
    With the disk tier, the budget of what exists is the disk's; RAM (smaller here) only holds the hot part."""
    settings = Settings(engines={"default": EngineSettings("default", kind="fake")}, cache_max_bytes=ram_bytes,
                        cache_disk_max_bytes=disk_bytes, state_dir=tmp_path)  # fmt: skip
    engine = FakeEngine(context_tokens=8192)
    services = build_services(settings, engine_factory=lambda _: engine, profiles=ProfileStore(":memory:"))
    with serve(services) as server:

        def client(key: str) -> Any:
            return boto3.client("bedrock-runtime", endpoint_url=server.url, region_name="us-east-1",
                                aws_access_key_id=key, aws_secret_access_key="x",
                                config=Config(retries={"total_max_attempts": 1}))  # fmt: skip

        def ask(runtime: Any, document: str) -> dict[str, int]:
            system = [{"text": document * (4200 // len(document))}, {"cachePoint": {"type": "default"}}]
            usage: dict[str, int] = runtime.converse(modelId=SONNET, system=system, messages=MESSAGES)["usage"]
            return usage

        victim, noisy = client("AKIDVICTIM"), client("AKIDNOISY")
        written = ask(victim, "victim")["cacheWriteInputTokens"]
        assert written > 4000
        for i in range(20):  # 20 new prefixes of ~4,200 tokens (~17 kB each): far over the whole budget
            assert ask(noisy, f"noise{i:02d}")["cacheWriteInputTokens"] > 4000
        assert ask(victim, "victim")["cacheReadInputTokens"] == written
        stats = httpx.get(f"{server.url}/cachepoint/cache").json()["cache"]
        assert stats["removals"]["quota"] > 0
        assert set(stats["quota_evictions_by_account"]) == {settings.account_for("AKIDNOISY")}


def test_metric_labels_stay_bounded(strict: ServerProcess) -> None:
    headers = {"authorization": "Bearer sk-bob-secret-token"}
    with httpx.Client(timeout=10) as client:
        for i in range(2000):
            model = f"anthropic.invented-model-{i}-v1:0" if i % 2 else f"garbage%20{i}"
            answer = client.post(f"{strict.url}/model/{model}/converse", json={"messages": MESSAGES}, headers=headers)
            assert answer.status_code == 400 and answer.json() == {
                "message": "The provided model identifier is invalid."
            }
        metrics = client.get(f"{strict.url}/metrics", headers={"authorization": "Bearer op-token"}).text
    assert "invented-model" not in metrics and "garbage" not in metrics
    assert (
        'InvocationClientErrors_total{ModelId="invalid",account="222222222222",inference_region="us-east-1",region="us-east-1"} 2000.0'
        in metrics
    )
    assert len(metrics) < 100_000
