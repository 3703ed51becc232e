"""`cachepoint doctor --html`: one self-contained page, rendered in headless Chromium (as the dashboard test
does), from JSON Lines logs and from a CloudWatch Logs export; hostile text in a log stays text."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from PIL import Image

from cachepoint.__main__ import main
from tests.e2e.test_dashboard import CHROMIUM, browse
from tests.unit.test_doctor import DOC, FIXTURE, record

SONNET_45 = {"modelId": "us.anthropic.claude-sonnet-4-5-20250929-v1:0"}


def logs() -> list[dict[str, Any]]:
    """A write, a read, an expiry 18 minutes on, a region switch, and an edited prefix written once."""
    return [
        record(1, "2026-11-30T10:00:00Z", DOC, 0, 1200, **SONNET_45),
        record(2, "2026-11-30T10:02:00Z", DOC, 1200, 0, **SONNET_45),
        record(3, "2026-11-30T10:20:00Z", DOC, 0, 1200, **SONNET_45),
        record(4, "2026-11-30T10:21:00Z", DOC, 0, 1200, region="us-west-2", **SONNET_45),
        record(5, "2026-11-30T10:30:00Z", "<script>alert(1)</script>" + DOC, 0, 1300, **SONNET_45),
    ]


def rendered(tmp_path: Path, source: Path) -> tuple[str, Image.Image]:
    page = tmp_path / "report.html"
    assert main(["doctor", str(source), "--html", str(page)]) == 0
    dom = browse(page.as_uri(), tmp_path / "profile", "--dump-dom").stdout
    shot = tmp_path / "shot.png"
    browse(page.as_uri(), tmp_path / "profile", f"--screenshot={shot}", "--window-size=1000,1200")
    return dom, Image.open(shot).convert("RGB")


def test_the_html_report_renders_timelines_gaps_costs_and_advice(tmp_path: Path) -> None:
    assert CHROMIUM is not None, "chromium is installed by scripts/ensure-chromium.sh"
    source = tmp_path / "logs.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in logs()))
    dom, image = rendered(tmp_path, source)
    outcomes = re.findall(r'data-outcome="([a-z-]+)"', dom)
    assert outcomes == ["first-write", "hit", "ttl-expired", "region-switch", "prefix-changed"]
    gaps = dict(re.findall(r'data-gap="([^"]+)" data-uses="(\d+)"', dom))
    assert gaps == {"under 5 min": "2", "5-60 min": "1", "over 60 min": "0"}
    assert re.search(r'data-gap="under 5 min" data-uses="2" data-reads="1"', dom)
    assert "A 1h TTL would have turned 1 of these 1 expiries into reads and saved $" in dom
    assert "<td>total</td><td>5</td>" in dom and "region: us-west-2" in dom
    assert "<script>alert" not in dom and "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    pixels = list(zip(*(iter(image.tobytes()),) * 3, strict=True))
    for colour in ((0x2E, 0x7D, 0x32), (0x15, 0x65, 0xC0), (0xEF, 0x6C, 0x00)):  # hit, first write, expiry
        assert sum(1 for p in pixels if all(abs(a - b) < 16 for a, b in zip(p, colour, strict=True))) > 30, colour


def test_the_html_report_from_a_cloudwatch_logs_export(tmp_path: Path) -> None:
    assert CHROMIUM is not None, "chromium is installed by scripts/ensure-chromium.sh"
    events = {"events": [{"timestamp": i, "message": json.dumps(r)} for i, r in enumerate(logs())]}
    source = tmp_path / "events.json"
    source.write_text(json.dumps(events))
    dom, _ = rendered(tmp_path, source)
    assert len(re.findall(r'data-outcome="', dom)) == 5 and "5 requests; cache hit rate" in dom


def test_the_html_report_on_the_published_bedrock_logs(tmp_path: Path) -> None:
    """Real Bedrock logs (the novel-translation fixture): the region switch and the Region that never caches
    are drawn with their causes."""
    assert CHROMIUM is not None, "chromium is installed by scripts/ensure-chromium.sh"
    dom, _ = rendered(tmp_path, FIXTURE)
    outcomes = re.findall(r'data-outcome="([a-z-]+)"', dom)
    assert "region-switch" in outcomes and "region-not-caching" in outcomes
    assert "ap-northeast-2" in dom and "<table id=\"costs\">" in dom
