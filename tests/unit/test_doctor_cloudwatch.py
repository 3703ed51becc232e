"""The doctor reads invocation logs as CloudWatch Logs hands them out: the JSON `aws logs filter-log-events`
(or `get-log-events`) prints, and CloudWatch's export to S3 (numbered gz files, a timestamp before each
record). The same records give the same findings as the JSON Lines Bedrock delivers to S3."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from cachepoint.__main__ import main
from cachepoint.doctor.analysis import analyse
from cachepoint.doctor.reader import load_records
from cachepoint.doctor.whatif import LongerTtl, longer_ttl
from cachepoint.models.catalog import Catalog
from tests.unit.test_doctor import DOC, record

CATALOG = Catalog.packaged()


def records() -> list[dict[str, Any]]:
    """A write, a read two minutes later, then an expiry: what the doctor must explain from any source."""
    return [
        record(1, "2026-11-30T10:00:00Z", DOC, 0, 1200),
        record(2, "2026-11-30T10:02:00Z", DOC, 1200, 0),
        record(3, "2026-11-30T10:20:00Z", DOC, 0, 1200),
    ]


def findings(source: Path) -> list[tuple[str | None, str]]:
    return [(f.request.request_id, f.cause) for f in analyse(load_records(str(source)), CATALOG)]


def test_filter_log_events_output_reads_like_s3_delivery(tmp_path: Path) -> None:
    lines = tmp_path / "s3.jsonl"
    lines.write_text("".join(json.dumps(r) + "\n" for r in records()))
    events = {"events": [{"logStreamName": "aws/bedrock/modelinvocations", "timestamp": 1796032800000 + i,
                          "message": json.dumps(r), "ingestionTime": 1796032801000, "eventId": str(i)}
                         for i, r in enumerate(records())], "searchedLogStreams": []}  # fmt: skip
    cloudwatch = tmp_path / "events.json"
    cloudwatch.write_text(json.dumps(events, indent=2))
    loaded = load_records(str(cloudwatch))
    assert [r.request_id for r in loaded] == ["r1", "r2", "r3"] and loaded.skipped == ()
    assert findings(cloudwatch) == findings(lines)
    assert [cause for _, cause in findings(cloudwatch)] == ["first-write", "hit", "ttl-expired"]


def test_an_export_to_s3_is_read_from_its_folder(tmp_path: Path) -> None:
    stream = tmp_path / "exportedlogs" / "0a1b2c3d-task" / "aws" / "bedrock" / "modelinvocations"
    stream.mkdir(parents=True)
    text = "".join(f"{r['timestamp'].replace('Z', '.000Z')} {json.dumps(r)}\n" for r in records())
    (stream / "000000.gz").write_bytes(gzip.compress(text.encode()))
    assert [r.request_id for r in load_records(str(tmp_path / "exportedlogs"))] == ["r1", "r2", "r3"]
    assert [cause for _, cause in findings(tmp_path / "exportedlogs")] == ["first-write", "hit", "ttl-expired"]


def test_an_event_without_a_record_is_skipped_and_said(tmp_path: Path, capsys: Any) -> None:
    events = {"events": [{"timestamp": 1, "message": json.dumps(records()[0])}, {"timestamp": 2, "message": 7},
                         {"timestamp": 3}]}  # fmt: skip
    source = tmp_path / "events.json"
    source.write_text(json.dumps(events))
    loaded = load_records(str(source))
    assert [r.request_id for r in loaded] == ["r1"]
    assert [(s.reason.value, s.count) for s in loaded.skipped] == [("invalid-record", 2)]
    assert main(["doctor", str(source)]) == 0
    assert "invalid" in capsys.readouterr().err


def test_the_advice_computes_what_a_one_hour_ttl_would_have_saved(tmp_path: Path, capsys: Any) -> None:
    """Two expiries: one 18 minutes after the last use (a 1h TTL keeps it), one two hours later (it does not)."""
    sonnet_45 = {"modelId": "us.anthropic.claude-sonnet-4-5-20250929-v1:0"}  # offers the 1h TTL
    logs = [r | sonnet_45 for r in records()] + [record(4, "2026-11-30T12:30:00Z", DOC, 0, 1200, **sonnet_45)]
    source = tmp_path / "logs.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in logs))
    found = analyse(load_records(str(source)), CATALOG)
    assert [f.cause for f in found] == ["first-write", "hit", "ttl-expired", "ttl-expired"]
    prices = CATALOG.get("anthropic.claude-sonnet-4-5-20250929-v1:0").prices  # type: ignore[union-attr]
    assert prices is not None and prices.write_5m and prices.write_1h and prices.read
    per_token = (prices.write_5m - prices.read - (prices.write_1h - prices.write_5m)) / 1_000_000
    what_if = longer_ttl(found, CATALOG)
    assert what_if == LongerTtl(expiries=2, turned=1, saved_usd=1200 * per_token)
    assert main(["doctor", str(source)]) == 0
    assert f"A 1h TTL would have turned 1 of these 2 expiries into reads and saved ${1200 * per_token:.4f}" in (
        capsys.readouterr().out
    )
