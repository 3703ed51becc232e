"""The doctor on the published Bedrock logs and on logs with a timestamp in the system prompt."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from cachepoint.__main__ import main
from cachepoint.doctor.analysis import analyse, edit_span
from cachepoint.doctor.costs import cost_report
from cachepoint.doctor.reader import load_records
from cachepoint.models.catalog import Catalog

FIXTURE = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "novel-translation-logs.jsonl"
CATALOG = Catalog.packaged()
DOC = "The archive holds letters from the harbour master about shipments and weather. " * 40


def record(
    i: int, when: str, system: str, read: int, write: int, region: str = "us-east-1", **extra: Any
) -> dict[str, Any]:
    body = {"system": [{"text": system}, {"cachePoint": {"type": "default"}}],
            "messages": [{"role": "user", "content": [{"text": f"question {i}"}]}]}  # fmt: skip
    return {"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": when, "accountId": "111122223333",
            "region": region, "requestId": f"r{i}", "operation": "Converse", "modelId": "us.anthropic.claude-sonnet-4-20250514-v1:0",
            "input": {"inputBodyJson": body, "inputTokenCount": 20, "cacheReadInputTokenCount": read, "cacheWriteInputTokenCount": write},
            "output": {"outputTokenCount": 5}, **extra}  # fmt: skip


@pytest.mark.skipif(not FIXTURE.exists(), reason="shared fixtures not present beside the repo")
def test_published_logs_name_the_region_switch_and_the_region_that_never_caches(
    capsys: pytest.CaptureFixture[str],
) -> None:
    findings = {f.request.request_id[-1]: f for f in analyse(load_records(str(FIXTURE)), CATALOG)}
    assert findings["3"].cause == "region-not-caching" and findings["3"].data["region"] == "ap-northeast-2"
    assert findings["5"].cause == "region-switch" and findings["5"].data == {"from": ["us-west-2"], "to": "us-east-2"}
    assert findings["2"].cause == "hit" and findings["1"].cause == "first-write"
    assert main(["doctor", str(FIXTURE)]) == 0
    out = capsys.readouterr().out
    assert "region-switch — cached in us-west-2, served in us-east-2" in out
    assert "Region(s) ap-northeast-2 never cached" in out


def test_timestamp_in_the_system_prompt_is_named_with_its_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [
        record(1, "2026-11-20T10:00:00Z", f"Current time: 2026-11-20 10:00:00. {DOC}", 0, 1500),
        record(2, "2026-11-20T10:01:00Z", f"Current time: 2026-11-20 10:01:00. {DOC}", 0, 1500),
    ]
    path = (
        tmp_path / "AWSLogs" / "111122223333" / "BedrockModelInvocationLogs" / "us-east-1" / "2026" / "11" / "20" / "10"
    )
    path.mkdir(parents=True)
    # one gzip member per record, as cachepoint writes them
    (path / "batch.json.gz").write_bytes(b"".join(gzip.compress((json.dumps(r) + "\n").encode()) for r in records))
    finding = analyse(load_records(str(tmp_path)), CATALOG)[1]
    assert finding.cause == "prefix-changed"
    assert finding.data["position"] == len("Current time: 2026-11-20 10:0")
    assert "10:00:00" in finding.data["before"] and "10:01:00" in finding.data["after"]
    main(["doctor", str(tmp_path)])
    assert "move it after the last checkpoint" in capsys.readouterr().out


def test_ttl_gaps_and_minimums() -> None:
    records = [
        record(1, "2026-11-20T10:00:00Z", DOC, 0, 1500),
        record(2, "2026-11-20T10:20:00Z", DOC, 0, 1500),
        record(3, "2026-11-20T10:21:00Z", "short", 0, 0),
    ]
    records[2]["input"]["inputTokenCount"] = 30
    causes = [f.cause for f in analyse(records, CATALOG)]
    assert causes == ["first-write", "ttl-expired", "below-minimum"]


def test_reads_without_any_checkpoint_are_implicit_caching() -> None:
    unmarked = [record(i, f"2026-11-20T10:0{i}:00Z", DOC, read, 0) for i, read in ((1, 0), (2, 1500))]
    for r in unmarked:
        r["input"]["inputBodyJson"]["system"] = [{"text": DOC}]  # no cachePoint
    assert [f.cause for f in analyse(unmarked, CATALOG)] == ["no-checkpoint", "implicit-hit"]


def test_edit_span_ignores_unrelated_documents() -> None:
    assert edit_span("intro [novel A, German, about 7,700 tokens]", "intro [novel B, Finnish, 29,700 tokens]") is None
    position, before, after = edit_span("id=123 " + DOC, "id=124 " + DOC)  # type: ignore[misc]
    assert position == 5 and before.startswith("id=123 The") and after.startswith("id=124 The")
    assert len(before) < 40  # an excerpt around the edit, not the document


def test_cost_report_matches_hand_arithmetic() -> None:
    records = [record(1, "2026-11-20T10:00:00Z", DOC, 0, 1000), record(2, "2026-11-20T10:01:00Z", DOC, 1000, 0)]
    totals = cost_report(records, CATALOG).total
    # Sonnet 4: input 3.00, output 15.00, write 3.75, read 0.30 per million
    expected = (2 * (20 * 3 + 5 * 15) + 1000 * 375 / 100 + 1000 * 3 / 10) / 1_000_000
    assert float(totals.cost) == pytest.approx(expected)
    assert float(totals.uncached_cost) == pytest.approx((2 * (1020 * 3 + 5 * 15)) / 1_000_000)


def test_rejected_checkpoints_are_named() -> None:
    five = record(1, "2026-11-20T10:00:00Z", DOC, 0, 0, errorCode="ValidationException")
    five["input"]["inputBodyJson"]["messages"][0]["content"] = [
        part for i in range(5) for part in ({"text": f"b{i}"}, {"cachePoint": {"type": "default"}})
    ]
    five["input"]["inputBodyJson"]["system"] = [{"text": "s"}]
    misplaced = record(2, "2026-11-20T10:00:05Z", DOC, 0, 0, errorCode="ValidationException")
    misplaced["input"]["inputBodyJson"]["messages"][0]["content"] = [{"cachePoint": {"type": "default"}}, {"text": "q"}]
    del five["output"], misplaced["output"]
    findings = analyse([five, misplaced], CATALOG)
    assert [f.cause for f in findings] == ["too-many-checkpoints", "misplaced-checkpoint"]
