"""Service tiers in process: the tier a request asks for (Converse's `serviceTier`, InvokeModel's header) is
echoed, and billed at the catalog's multiplier when the model offers it, else at the standard price; the log's
`cachepoint` extension names the tier billed."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from cachepoint.api.app import create_app
from cachepoint.api.common import AppServices
from cachepoint.bootstrap import build_services
from cachepoint.engine.fake import FakeEngine
from cachepoint.routing.profiles import ProfileStore
from cachepoint.settings import EngineSettings, LoggingSettings, Settings
from tests.api.wire import Boto

NOVA_PRO = "amazon.nova-pro-v1:0"  # offers priority and flex
SONNET = "us.anthropic.claude-sonnet-4-6"  # standard only
USER = [{"role": "user", "content": [{"text": "Name three colours."}]}]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, AppServices, Path]]:
    settings = Settings(engines={"default": EngineSettings("default", kind="fake")}, implicit_caching=False,
                        logging=LoggingSettings(dir=tmp_path, fsync=False))  # fmt: skip
    services = build_services(settings, engine_factory=lambda _: FakeEngine(), profiles=ProfileStore(":memory:"))
    with TestClient(create_app(services)) as client:
        yield client, services, tmp_path


def logged(services: AppServices, root: Path) -> list[dict[str, Any]]:
    assert services.telemetry.flush()
    records = []
    for path in sorted(root.rglob("*.json.gz")):
        records += [json.loads(line) for line in gzip.decompress(path.read_bytes()).decode().splitlines()]
    return sorted(records, key=lambda r: r["timestamp"])


def converse(client: TestClient, model: str, tier: str | None) -> Any:
    extra = {"serviceTier": {"type": tier}} if tier else {}
    return Boto(client, "bedrock-runtime")("Converse", modelId=model, messages=USER, inferenceConfig={"maxTokens": 4},
                                           **extra)  # fmt: skip


def test_converse_tiers_are_echoed_and_priced(served: tuple[TestClient, AppServices, Path]) -> None:
    client, services, root = served
    replies = [converse(client, NOVA_PRO, tier) for tier in (None, "priority", "flex", "reserved")]
    assert [r.json().get("serviceTier") for r in replies] == [None, {"type": "priority"}, {"type": "flex"},
                                                              {"type": "reserved"}]  # fmt: skip
    records = [r for r in logged(services, root) if r["operation"] == "Converse"]
    costs = [Decimal(r["cachepoint"]["costUsd"]) for r in records]
    assert costs[1] == costs[0] * Decimal("1.75") and costs[2] == costs[0] * Decimal("0.5") and costs[3] == costs[0]
    assert [r["cachepoint"].get("serviceTier") for r in records] == [None, "priority", "flex", "default"]


def test_a_tier_the_model_does_not_offer_is_billed_standard(served: tuple[TestClient, AppServices, Path]) -> None:
    client, services, root = served
    standard, asked = converse(client, SONNET, None), converse(client, SONNET, "priority")
    assert asked.status_code == 200 and asked.json()["serviceTier"] == {"type": "priority"}
    first, second = logged(services, root)
    assert first["cachepoint"]["costUsd"] == second["cachepoint"]["costUsd"]
    assert second["cachepoint"]["serviceTier"] == "default" and standard.status_code == 200


def test_invoke_models_header_is_priced_too(served: tuple[TestClient, AppServices, Path]) -> None:
    client, services, root = served
    body = json.dumps({"schemaVersion": "messages-v1", "messages": USER, "inferenceConfig": {"maxTokens": 4}}).encode()
    runtime = Boto(client, "bedrock-runtime")
    plain = runtime("InvokeModel", modelId=NOVA_PRO, body=body, contentType="application/json")
    flex = runtime("InvokeModel", modelId=NOVA_PRO, body=body, contentType="application/json", serviceTier="flex")
    assert plain.status_code == flex.status_code == 200
    assert flex.headers["x-amzn-bedrock-service-tier"] == "flex"
    first, second = logged(services, root)
    assert Decimal(second["cachepoint"]["costUsd"]) == Decimal(first["cachepoint"]["costUsd"]) * Decimal("0.5")
    assert second["cachepoint"]["serviceTier"] == "flex"
