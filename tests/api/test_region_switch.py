"""A profile's call routed away from the Region holding its prefix says so: `region-switch`, not `new`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from cachepoint.api.app import create_app
from cachepoint.bootstrap import build_services
from cachepoint.engine.fake import FakeEngine
from cachepoint.routing.profiles import ProfileStore
from cachepoint.settings import EngineSettings, RoutingSettings, Settings
from tests.api.wire import Boto

PROFILE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
SYSTEM = [{"text": "ledger " * 200}, {"cachePoint": {"type": "default"}}]


@pytest.fixture
def scattered() -> Iterator[Boto]:
    """Bedrock's cache-blind routing (seeded): an idle profile's calls spread over its three US Regions."""
    settings = Settings(engines={"default": EngineSettings("default", kind="fake")},
                        routing=RoutingSettings(policy="bedrock", seed=7))  # fmt: skip
    services = build_services(settings, engine_factory=lambda _: FakeEngine(), profiles=ProfileStore(":memory:"))
    with TestClient(create_app(services)) as client:
        yield Boto(client, "bedrock-runtime")


def test_a_write_in_another_region_than_the_prefix_is_a_region_switch(scattered: Boto) -> None:
    seen: dict[str, str] = {}
    for i in range(12):
        response = scattered("Converse", modelId=PROFILE, system=SYSTEM,
                             messages=[{"role": "user", "content": [{"text": f"q{i}"}]}])  # fmt: skip
        assert response.status_code == 200, response.text
        region, cache = response.headers["x-amzn-bedrock-inference-region"], response.headers["x-cachepoint-cache"]
        outcome, tokens, _, *cause = cache.split(":")
        expected = ("hit", []) if region in seen else ("written", ["new"] if not seen else ["region-switch"])
        assert (outcome, cause[:1] if outcome == "written" else []) == expected, (i, region, cache)
        seen.setdefault(region, cache)
    assert len(seen) == 3  # the profile's three Regions each wrote the prefix once
