"""The dashboard, rendered by a real browser (headless Chromium) with data from a run of requests."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from PIL import Image

from cachepoint.api.common import AppServices
from cachepoint.bootstrap import build_services
from cachepoint.clock import FakeClock
from cachepoint.engine.fake import FakeEngine
from cachepoint.routing.profiles import ProfileStore
from cachepoint.settings import EngineSettings, LoggingSettings, RoutingSettings, Settings
from tests.api.test_replica_failover import two_replicas
from tests.live import serve

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--window-size=1280,1100", "--virtual-time-budget=4000"]  # fmt: skip
SERIES_RGB = {"read": (47, 126, 216), "write": (242, 143, 67), "hit_rate": (44, 162, 95)}


def browse(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *extra, url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def fake_services(tmp_path: Path, clock: FakeClock, engine: FakeEngine, **settings: Any) -> AppServices:
    """A server on the fake engine with an injected clock, its logs under `tmp_path`."""
    logging = LoggingSettings(dir=tmp_path / "logs", fsync=False)
    configured = Settings(engines={"default": EngineSettings("default", kind="fake")}, logging=logging, **settings)
    return build_services(configured, engine_factory=lambda _: engine, clock=clock, profiles=ProfileStore(":memory:"))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by scripts/setup.sh")
def test_dashboard_charts_render_with_data(tmp_path: Path) -> None:
    clock = FakeClock(start_s=1_763_700_000)
    with serve(fake_services(tmp_path, clock, FakeEngine(prefill_s_per_token=0.0002))) as server:
        runtime = boto3.client("bedrock-runtime", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="AKIDDASH",
                               aws_secret_access_key="x", config=Config(retries={"total_max_attempts": 1}))  # fmt: skip
        for minute in range(4):
            for question in range(3):
                stream = runtime.converse_stream(
                    modelId="us.anthropic.claude-sonnet-4-5-20250929-v1:0",
                    system=[
                        {"text": f"document {minute // 2} " + "ledger " * 300},
                        {"cachePoint": {"type": "default"}},
                    ],
                    messages=[{"role": "user", "content": [{"text": f"q{question}"}]}],
                )
                list(stream["stream"])
            clock.tick(60)
        dom = browse(f"{server.url}/dashboard", tmp_path / "p1", "--dump-dom").stdout
        shot = tmp_path / "dashboard.png"
        browse(f"{server.url}/dashboard", tmp_path / "p2", f"--screenshot={shot}")

    for series in ("hit_rate", "read", "write", "uncached", "cost", "savings", "ttft_cached"):
        assert f'data-series="{series}" data-points="4"' in dom, series
    assert 'data-series="ttft_cold" data-points="2"' in dom  # a new document every other minute: two cold minutes
    assert "<td>us-east-1</td>" in dom and "updated " in dom
    image = Image.open(shot).convert("RGB")
    raw = image.tobytes()
    pixels = list(zip(raw[0::3], raw[1::3], raw[2::3], strict=True))
    for series, rgb in SERIES_RGB.items():
        painted = sum(1 for p in pixels if all(abs(a - b) < 12 for a, b in zip(p, rgb, strict=True)))
        assert painted > 150, f"{series} is not drawn ({painted} pixels)"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by scripts/setup.sh")
def test_the_cache_explorer_shows_live_entries_counting_down_miss_causes_and_idle_gaps(tmp_path: Path) -> None:
    clock = FakeClock(start_s=1_763_700_000)
    # two snapshots of ~1,230 tokens (4 bytes each) fit the budget: a third evicts the oldest
    services = fake_services(tmp_path, clock, FakeEngine(), cache_max_bytes=12_000, cache_disk_max_bytes=0)
    with serve(services) as server:
        runtime = boto3.client("bedrock-runtime", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="AKIDEXPLORE",
                               aws_secret_access_key="x", config=Config(retries={"total_max_attempts": 1}))  # fmt: skip

        def ask(document: str) -> str:
            answer = runtime.converse(modelId="us.anthropic.claude-sonnet-4-5-20250929-v1:0",
                                      system=[{"text": document}, {"cachePoint": {"type": "default"}}],
                                      messages=[{"role": "user", "content": [{"text": "q"}]}])  # fmt: skip
            outcome, _, _, *why = answer["ResponseMetadata"]["HTTPHeaders"]["x-cachepoint-cache"].split(":")
            return ":".join([outcome, *why])

        book = {name: f"book {name} " + "ledger " * 170 for name in "ABCD"}
        assert [ask(book["A"]), ask(book["A"]), ask(book["B"])] == ["written:new", "hit:ram", "written:prefix-changed"]
        clock.tick(301)
        assert [ask(book["A"]), ask(book["C"]), ask(book["D"]), ask(book["A"])] == [
            "written:expired", "written:prefix-changed", "written:prefix-changed", "written:evicted"]  # fmt: skip
        assert ask("too short to cache") == "skipped-below-minimum"
        first = browse(f"{server.url}/dashboard", tmp_path / "p1", "--dump-dom").stdout
        clock.tick(100)
        later = browse(f"{server.url}/dashboard", tmp_path / "p2", "--dump-dom").stdout

    rows = r'<tr data-prefix="[0-9a-f]{12}"'
    assert len(re.findall(rows, first)) == 2 and len(re.findall(rows, later)) == 2  # D and A, live
    left_first = [int(s) for s in re.findall(r'class="left" data-expires="[\d.]+">(\d+) s<', first)]
    left_later = [int(s) for s in re.findall(r'class="left" data-expires="[\d.]+">(\d+) s<', later)]
    assert all(290 <= s <= 300 for s in left_first) and all(190 <= s <= 200 for s in left_later), (left_first, left_later)
    for cause in ("new", "prefix-changed", "expired", "evicted", "below-minimum"):
        assert f'data-cause="{cause}"' in first, cause
    assert 'data-gap="under 5 min" data-returns="2" data-reads="1"' in first  # A read at once, A evicted and back
    assert 'data-gap="5-60 min" data-returns="1" data-reads="0"' in first  # A expired after 301 s
    assert first.count("<tr data-saved-prefix=") >= 1 and first.count("<tr data-lost-prefix=") >= 2


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by scripts/setup.sh")
def test_the_miss_chart_names_region_switches_replica_losses_and_salt_changes(tmp_path: Path) -> None:
    """The causes the first explorer test cannot produce on one in-process engine: a profile scattered over its
    Regions (`bedrock` routing), a remote replica that died holding a prefix, a changed tool_choice."""
    clock = FakeClock(start_s=1_763_700_000)
    services = fake_services(tmp_path, clock, FakeEngine(), routing=RoutingSettings(policy="bedrock", seed=7))
    dying, _ = two_replicas(services, after=None)  # us-east-1 is served by two remote replicas
    with serve(services) as server:
        runtime = boto3.client("bedrock-runtime", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="AKIDCAUSES",
                               aws_secret_access_key="x", config=Config(retries={"total_max_attempts": 1}))  # fmt: skip

        def ask(model: str, **extra: Any) -> str:
            messages = [{"role": "user", "content": [{"text": "ledger " * 170}, {"cachePoint": {"type": "default"}}]}]
            answer = runtime.converse(modelId=model, messages=messages, **extra)
            return str(answer["ResponseMetadata"]["HTTPHeaders"]["x-cachepoint-cache"].split(":")[-1])

        profile = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
        causes = [ask(profile) for _ in range(8)]
        assert causes[0] == "new" and "region-switch" in causes
        nova, tools = "amazon.nova-pro-v1:0", [{"toolSpec": {"name": "t", "inputSchema": {"json": {}}}}]
        assert ask(nova, toolConfig={"tools": tools, "toolChoice": {"auto": {}}}) == "new"
        dying.runner.dead = True  # type: ignore[attr-defined]
        assert ask(nova, toolConfig={"tools": tools, "toolChoice": {"auto": {}}}) == "replica-lost"
        assert ask(nova, toolConfig={"tools": tools, "toolChoice": {"any": {}}}) == "tool-choice-changed"
        dom = browse(f"{server.url}/dashboard", tmp_path / "p", "--dump-dom").stdout

    for cause in ("new", "region-switch", "replica-lost", "tool-choice-changed"):
        assert f'data-cause="{cause}"' in dom, cause
