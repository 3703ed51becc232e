"""LocalLogSink against real files and its real writer thread: layout, order, bounded descriptors,
idle closing, failures, backpressure, flush/close, permissions, and a caller that never waits on the disk."""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cachepoint.clock import FakeClock
from cachepoint.telemetry.records import LogRecord
from cachepoint.telemetry.sinks import ENQUEUE_TIMEOUT_S, LocalLogSink, S3Delivery

T0 = 1_763_632_800.0  # 2025-11-20T10:00:00Z, the start of an hour
HOUR_FILE = re.compile(
    r"^AWSLogs/(\d+)/BedrockModelInvocationLogs/([a-z0-9-]+)/\d{4}/\d{2}/\d{2}/\d{2}/\d{8}T\d{6}Z_[0-9a-f-]{36}\.json\.gz$"
)


def entry(n: int, account: str = "111122223333", region: str = "us-east-1", **offloaded: bytes) -> LogRecord:
    record = {"accountId": account, "region": region, "requestId": f"req-{n}", "n": n, "text": "é" * 3}
    return LogRecord(record, {f"data/req-{n}_{kind}.json.gz": body for kind, body in offloaded.items()})


def hour_files(root: Path) -> dict[str, list[dict[str, Any]]]:
    """Relative path → the records in that file, in file order (offloaded bodies left out)."""
    found = {}
    for path in sorted(root.rglob("*.json.gz")):
        if "/data/" not in str(path):
            lines = gzip.decompress(path.read_bytes()).decode().splitlines()
            found[str(path.relative_to(root))] = [json.loads(line) for line in lines]
    return found


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def sinks() -> Iterator[list[LocalLogSink]]:
    """Sinks a test makes are closed after it, so no writer thread outlives its test."""
    made: list[LocalLogSink] = []
    yield made
    for sink in made:
        sink.close()


def make(sinks: list[LocalLogSink], root: Path, **kwargs: Any) -> LocalLogSink:
    sinks.append(LocalLogSink(root, **{"fsync": False, **kwargs}))
    return sinks[-1]


def test_files_decode_to_the_records_in_order_after_flush(sinks: list[LocalLogSink], tmp_path: Path) -> None:
    sink = make(sinks, tmp_path)
    pairs = [("111122223333", "us-east-1"), ("111122223333", "us-west-2"), ("444455556666", "us-east-1")]
    for n in range(90):
        sink.write(entry(n, *pairs[n % 3]), T0 + n)
    assert sink.flush(5.0)
    files = hour_files(tmp_path)
    assert len(files) == 3
    for key, records in files.items():
        match = HOUR_FILE.match(key)
        assert match is not None, key
        index = pairs.index((match[1], match[2]))
        assert [r["n"] for r in records] == list(range(index, 90, 3))
    assert files[min(files)][0]["text"] == "ééé"
    assert sink.num_failed == sink.num_dropped == 0


def test_open_descriptors_never_exceed_max_open_files(sinks: list[LocalLogSink], tmp_path: Path) -> None:
    before = open_fds()
    sink = make(sinks, tmp_path, max_open_files=4)
    peak = 0
    for n in range(60):
        sink.write(entry(n, account=f"{n:012d}", region=f"xx-made-{n % 7}"), T0 + n)
        assert sink.flush(5.0)
        peak = max(peak, open_fds() - before)
    assert peak == 4
    assert len(hour_files(tmp_path)) == 60
    sink.close()
    assert open_fds() == before


def test_a_reopened_hour_file_is_appended_to_under_the_same_name(sinks: list[LocalLogSink], tmp_path: Path) -> None:
    sink = make(sinks, tmp_path, max_open_files=1)
    for n, region in enumerate(["us-east-1", "us-west-2", "us-east-1", "us-west-2", "us-east-1"]):
        sink.write(entry(n, region=region), T0 + n)  # each write closes the other Region's file
    assert sink.flush(5.0)
    files = hour_files(tmp_path)
    assert sorted([r["n"] for r in records] for records in files.values()) == [[0, 2, 4], [1, 3]]


def test_a_new_hour_starts_a_new_file(sinks: list[LocalLogSink], tmp_path: Path) -> None:
    before = open_fds()
    sink = make(sinks, tmp_path)
    sink.write(entry(0), T0 + 3599)
    sink.write(entry(1), T0 + 3600)
    sink.write(entry(2), T0 + 3601)
    assert sink.flush(5.0)
    assert [[r["n"] for r in records] for records in hour_files(tmp_path).values()] == [[0], [1, 2]]
    assert open_fds() - before == 1  # the past hour's file was closed


def test_idle_handles_are_closed_on_the_writers_next_record(sinks: list[LocalLogSink], tmp_path: Path) -> None:
    clock = FakeClock(0.0)
    before = open_fds()
    sink = make(sinks, tmp_path, idle_close_s=60.0, clock=clock)
    sink.write(entry(0, region="us-east-1"), T0)
    sink.write(entry(1, region="us-west-2"), T0)
    assert sink.flush(5.0)
    assert open_fds() - before == 2
    clock.tick(30.0)
    sink.write(entry(2, region="us-west-2"), T0 + 1)
    assert sink.flush(5.0)
    clock.tick(30.0)  # us-east-1 idle for 60 s, us-west-2 for 30 s
    sink.write(entry(3, region="eu-west-1"), T0 + 2)
    assert sink.flush(5.0)
    assert open_fds() - before == 2
    clock.tick(60.0)
    sink.write(entry(4, region="us-east-1"), T0 + 3)  # reopens its own file; the other two are idle
    assert sink.flush(5.0)
    assert open_fds() - before == 1
    assert sorted(len(records) for records in hour_files(tmp_path).values()) == [1, 2, 2]


def test_an_idle_writer_closes_idle_handles_by_itself(sinks: list[LocalLogSink], tmp_path: Path) -> None:
    before = open_fds()
    sink = make(sinks, tmp_path, idle_close_s=0.05)
    sink.write(entry(0), T0)
    assert sink.flush(5.0)
    deadline = time.monotonic() + 5.0
    while open_fds() > before and time.monotonic() < deadline:
        time.sleep(0.01)  # the writer's timed wake is real time: there is nothing to tick
    assert open_fds() == before


def test_close_drains_the_queue_and_is_idempotent(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    others = set(threading.enumerate())
    sink = LocalLogSink(tmp_path, fsync=False)
    (writer,) = set(threading.enumerate()) - others
    assert writer.name == "invocation-log-writer" and writer.daemon
    for n in range(500):
        sink.write(entry(n), T0)
    sink.close()
    assert not writer.is_alive()
    assert [r["n"] for records in hour_files(tmp_path).values() for r in records] == list(range(500))
    sink.close()
    sink.write(entry(500), T0)
    assert sink.num_dropped == 1 and "sink is closed" in caplog.text
    assert sink.flush(0.1)


def test_a_failed_write_is_counted_and_the_writer_goes_on(
    sinks: list[LocalLogSink], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "AWSLogs").mkdir()
    (tmp_path / "AWSLogs" / "999999999999").write_text("a file where the account's folder should be")
    sink = make(sinks, tmp_path)
    sink.write(entry(0, account="999999999999"), T0)
    sink.write(entry(1, account="999999999999", input=b"{}"), T0)  # its body fails first
    assert sink.flush(5.0)
    assert sink.num_failed == 2
    assert "writing the log record of request req-0 failed" in caplog.text and "NotADirectoryError" in caplog.text
    sink.write(entry(2), T0)
    assert sink.flush(5.0)
    assert [[r["n"] for r in records] for records in hour_files(tmp_path).values()] == [[2]]
    assert sink.num_failed == 2 and sink.take_dirty() == [next(iter(hour_files(tmp_path)))]


class GateClock(FakeClock):
    """Stops the writer thread whenever it reads the time, as a stalled disk would; callers pass freely."""

    def __init__(self) -> None:
        super().__init__(0.0)
        self.gate = threading.Event()

    def now_s(self) -> float:
        if threading.current_thread().name == "invocation-log-writer":
            self.gate.wait()
        return super().now_s()


def test_a_full_queue_waits_briefly_then_drops_counts_and_logs(
    sinks: list[LocalLogSink], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = GateClock()
    sink = make(sinks, tmp_path, max_queued=2, clock=clock)
    started = time.monotonic()
    for n in range(10):
        sink.write(entry(n), T0)
    elapsed_s = time.monotonic() - started
    # the writer holds at most one record and the queue two; every other write waited, then dropped
    assert sink.num_dropped in (7, 8)
    assert ENQUEUE_TIMEOUT_S * sink.num_dropped * 0.9 <= elapsed_s < 5.0
    assert not sink.flush(0.05)  # the stalled records are not on disk yet
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "the log writer is behind (1 dropped so far)" in errors[0]  # one line a second
    clock.gate.set()
    assert sink.flush(5.0)
    written = [r["n"] for records in hour_files(tmp_path).values() for r in records]
    assert written == list(range(10 - sink.num_dropped))


def test_offloaded_bodies_and_dirty_keys(sinks: list[LocalLogSink], tmp_path: Path) -> None:
    sink = make(sinks, tmp_path)
    sink.write(entry(0, input=b'{"big":1}', output=b'{"big":2}'), T0)
    assert sink.flush(5.0)
    dirty = sink.take_dirty()
    (hour_file,) = hour_files(tmp_path)
    prefix = hour_file.rsplit("/", 1)[0]
    assert dirty == sorted([hour_file, f"{prefix}/data/req-0_input.json.gz", f"{prefix}/data/req-0_output.json.gz"])
    assert gzip.decompress((tmp_path / prefix / "data/req-0_output.json.gz").read_bytes()) == b'{"big":2}'
    assert sink.take_dirty() == []
    sink.mark_dirty([hour_file])
    assert sink.take_dirty() == [hour_file]


class FakeS3:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> None:  # boto3's argument names
        self.objects[Key] = Body


def test_s3_delivery_closed_first_still_uploads_every_record(tmp_path: Path) -> None:
    local, bucket = LocalLogSink(tmp_path, fsync=False), FakeS3()
    delivery = S3Delivery(local, bucket, "logs", "archive/", interval_s=3600)
    for n in range(50):
        local.write(entry(n), T0)
    delivery.close()
    local.close()
    ((key, body),) = bucket.objects.items()
    assert HOUR_FILE.match(key.removeprefix("archive/"))
    assert len(gzip.decompress(body).splitlines()) == 50


@pytest.fixture
def umask_zero() -> Iterator[None]:
    saved = os.umask(0)
    yield
    os.umask(saved)


def test_folders_are_0700_and_files_0600_whatever_the_umask(
    sinks: list[LocalLogSink], tmp_path: Path, umask_zero: None
) -> None:
    root = tmp_path / "state" / "logs"
    sink = make(sinks, root, fsync=True)
    sink.write(entry(0, input=b"{}"), T0)
    sink.write(entry(1, region="eu-west-1"), T0)
    assert sink.flush(5.0)
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in [tmp_path / "state", *root.parent.rglob("*")]}
    assert {str(p.relative_to(tmp_path)): m for p, m in modes.items() if p.is_dir() and m != 0o700} == {}
    assert {str(p.relative_to(tmp_path)): m for p, m in modes.items() if p.is_file() and m != 0o600} == {}
    assert sum(p.is_file() for p in modes) == 3


def test_write_leaves_the_disk_to_the_writer_thread(sinks: list[LocalLogSink], tmp_path: Path) -> None:
    sink = make(sinks, tmp_path, fsync=True)
    records = [entry(n, region=f"r{n % 10}") for n in range(300)]
    started = time.perf_counter()
    for n, record in enumerate(records):
        sink.write(record, T0 + n)
    mean_s = (time.perf_counter() - started) / len(records)
    assert mean_s < 0.5e-3, f"{mean_s * 1e3:.3f} ms per write"
    assert sink.flush(60.0)
    assert sum(len(r) for r in hour_files(tmp_path).values()) == 300
