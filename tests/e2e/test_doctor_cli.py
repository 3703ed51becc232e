"""`cachepoint doctor` and `cachepoint report` as real processes on a folder that mixes good records with
every hostile input: exit 0, no traceback, the findings of the good records, and the skips named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.hostile_logs import Expected, line, record, write_hostile_folder

Folder = tuple[Path, dict[str, Expected]]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Folder:
    base = tmp_path_factory.mktemp("doctor-cli")
    return base / "logs", write_hostile_folder(base / "logs", base / "outside")


def cachepoint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cachepoint", *args], capture_output=True, text=True, timeout=120)


def good_ids(expected: dict[str, Expected]) -> set[str]:
    return {i for e in expected.values() for i in e.good_ids}


def num_skipped(expected: dict[str, Expected]) -> int:
    return sum(n for e in expected.values() for n in e.reasons.values())


def test_doctor_explains_the_good_records_and_names_every_skip(folder: Folder) -> None:
    root, expected = folder
    run = cachepoint("doctor", str(root))
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert run.stdout.startswith(f"{len(good_ids(expected))} requests; cache hit rate ")
    assert "outcomes: hit 12, first-write 1, region-switch 1" in run.stdout
    assert "MISS good-3 2026-11-20T10:02:00Z" in run.stdout
    assert "region-switch — cached in us-west-2, served in us-east-2" in run.stdout
    summary = run.stderr.splitlines()[0]
    assert summary.startswith(f"skipped {num_skipped(expected)} inputs: ")
    for label in ("malformed gzips", "truncated gzip", "records nested too deep", "non-object records",
                  "invalid records", "invalid JSON lines", "gzip bomb", "symlinks", "non-regular file"):  # fmt: skip
        assert f" {label} (" in summary
    assert "\x1b" not in run.stdout + run.stderr


def test_doctor_json_lists_the_findings_and_the_skips(folder: Folder) -> None:
    root, expected = folder
    run = cachepoint("doctor", str(root), "--json")
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    document = json.loads(run.stdout)
    causes = {f["requestId"]: f["cause"] for f in document["findings"]}
    assert set(causes) == good_ids(expected)
    assert (causes["good-1"], causes["good-2"], causes["good-3"]) == ("first-write", "hit", "region-switch")
    skipped = {(s["source"], s["reason"]) for s in document["skipped"]}
    wanted = {(name, str(reason)) for name, e in expected.items() for reason in e.reasons}
    assert skipped == wanted
    assert sum(s["count"] for s in document["skipped"]) == num_skipped(expected)


def test_report_prices_the_good_records_and_names_every_skip(folder: Folder) -> None:
    root, expected = folder
    run = cachepoint("report", str(root))
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    total = run.stdout.splitlines()[0]
    assert total.startswith("  total") and f" {len(good_ids(expected))} req " in total
    assert total.endswith("(2 unpriced)")  # "::::" and an ARN of garbage: unpriced, not a crash
    assert "\nby model:\n" in run.stdout and "us.anthropic.claude-sonnet-4-20250514-v1:0" in run.stdout
    assert run.stderr.startswith(f"skipped {num_skipped(expected)} inputs: ")


@pytest.mark.parametrize("command", ["doctor", "report"])
def test_nothing_to_read_is_one_line_and_exit_2(tmp_path: Path, command: str) -> None:
    missing = cachepoint(command, str(tmp_path / "nowhere"))
    assert (missing.returncode, missing.stdout, missing.stderr) == (2, "", f"cachepoint: no logs at {tmp_path / 'nowhere'}\n")  # fmt: skip
    (tmp_path / "bad.jsonl").write_bytes(b'{"timestamp": 5}\n')
    (tmp_path / "bomb.json.gz").write_bytes(b"\x1f\x8b" + b"\0" * 64)
    unreadable = cachepoint(command, str(tmp_path))
    assert unreadable.returncode == 2 and unreadable.stdout == "" and unreadable.stderr.count("\n") == 1
    assert unreadable.stderr.startswith(f"cachepoint: no invocation records in {tmp_path}; skipped 2 inputs: ")


def test_one_good_file_beside_only_bad_ones_is_enough(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_bytes(b"NaN\n")
    (tmp_path / "good.jsonl").write_bytes(line(record("alone", read=0, write=1500)))
    run = cachepoint("doctor", str(tmp_path))
    assert run.returncode == 0 and run.stdout.startswith("1 requests; ")
    assert run.stderr.startswith("skipped 1 input: 1 invalid JSON line (bad.jsonl)\n")
