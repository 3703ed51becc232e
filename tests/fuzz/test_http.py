"""Fuzzing the live server over HTTP: hypothesis-generated Converse bodies, and schemathesis driven by the
OpenAPI description of the Anthropic API. Zero 5xx, zero hangs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cachepoint.bootstrap import build_services
from cachepoint.engine.fake import FakeEngine
from cachepoint.routing.profiles import ProfileStore
from cachepoint.settings import EngineSettings, Settings
from tests.fuzz.test_properties import converse_bodies, json_values
from tests.live import LiveServer, serve

SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi" / "anthropic-messages.json"
MODELS = [
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "amazon.nova-pro-v1:0",
    "meta.llama3-3-70b-instruct-v1:0",
    "nope",
]


@pytest.fixture(scope="module")
def target() -> Iterator[LiveServer]:
    settings = Settings(engines={"default": EngineSettings("default", kind="fake", context_tokens=4096)})
    engine = FakeEngine(context_tokens=4096, output_tokens=3)
    with serve(build_services(settings, engine_factory=lambda _: engine, profiles=ProfileStore(":memory:"))) as server:
        yield server


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    body=st.one_of(converse_bodies, json_values),
    model=st.sampled_from(MODELS),
    operation=st.sampled_from(["converse", "converse-stream", "invoke", "count-tokens"]),
)
def test_converse_bodies_never_cause_5xx_or_hangs(target: LiveServer, body: Any, model: str, operation: str) -> None:
    response = httpx.post(f"{target.url}/model/{model}/{operation}", content=json.dumps(body), timeout=10)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["x-amzn-ErrorType"] and response.json()["message"]


def test_schemathesis_against_the_anthropic_api(target: LiveServer, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "schemathesis.cli", "run", str(SPEC), "--url", target.url, "--checks", "not_a_server_error",
               "--max-examples", "40", "--workers", "1", "--seed", "7", "--phases", "examples,coverage,fuzzing",
               "--suppress-health-check", "all", "--request-timeout", "10"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "passed" in result.stdout.lower()
