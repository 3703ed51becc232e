"""Where invocation-log records go: a local folder laid out like Bedrock's S3 delivery, and optionally
an S3-compatible bucket with the same keys.

    <root>/AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/<yyyymmddThhmmssZ>_<uuid>.json.gz
One file per account, Region and hour; each record is appended as its own gzip member (gzip readers read
all members), so a crash loses at most the records not yet written. The layout and the bounded set of
open files are `hourfiles.py`'s; this module moves the disk work off the caller's thread.
"""

from __future__ import annotations

import gzip
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cachepoint.clock import Clock
from cachepoint.telemetry.hourfiles import HourFiles
from cachepoint.telemetry.hourfiles import hour_prefix as hour_prefix
from cachepoint.telemetry.records import LogRecord

log = logging.getLogger(__name__)
ENQUEUE_TIMEOUT_S = 0.05  # how long `write` may hold the event loop when the writer is behind
DROP_LOG_INTERVAL_S = 1.0  # at most one "dropped" log line per interval, so drops cannot flood the log


class LogSink(Protocol):
    def write(self, entry: LogRecord, timestamp_s: float) -> None: ...

    def flush(self, timeout_s: float) -> bool:
        """Waits until everything written so far is stored; False if `timeout_s` passed first."""
        ...

    def close(self) -> None: ...


class MonotonicClock:
    """Idle deadlines must not move when the wall clock is set."""

    def now_s(self) -> float:
        return time.monotonic()


@dataclass(frozen=True)
class _Job:
    """One record, serialized on the caller's thread: the record refers to request objects, and the bytes
    are a snapshot the writer can use at any later time. Compression is left to the writer."""

    request_id: str
    account: str
    region: str
    timestamp_s: float
    line: bytes
    offloaded: tuple[tuple[str, bytes], ...]

    @staticmethod
    def of(entry: LogRecord, timestamp_s: float) -> _Job:
        record = entry.record
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        offloaded = tuple(entry.offloaded.items())
        return _Job(record["requestId"], record["accountId"], record["region"], timestamp_s, line, offloaded)


class LocalLogSink:
    """Writes records to `root` from one writer thread; `write` only enqueues.

    - `write` is safe from any thread and never touches the disk. The queue holds up to `max_queued`
      records. When it is full (the disk is slower than the traffic, or stalled), `write` waits up to
      ENQUEUE_TIMEOUT_S for room, which slows intake to the disk's pace during a burst; past that the
      record is dropped, counted in `num_dropped` and logged (at most once a second, with the count).
      A stalled disk thus costs at most ENQUEUE_TIMEOUT_S per logged request and some records, never answers.
      Records written after `close` are dropped and counted the same way.
    - The writer appends each record (and first its offloaded bodies), fsyncs when `fsync` is set, and
      marks the keys dirty for S3Delivery. A failure (disk full, permissions) is logged with its
      exception and counted in `num_failed`; that record is lost, the thread goes on.
    - `flush(timeout_s)` waits until every record enqueued before the call has been written or has
      failed: readable by other processes (durable too when `fsync` is set).
    - `close()` drains the queue, closes every file and stops the thread; calling it again does nothing.
    """

    def __init__(
        self,
        root: Path,
        *,
        fsync: bool = True,
        max_open_files: int = 64,
        idle_close_s: float = 60.0,
        max_queued: int = 10_000,
        clock: Clock | None = None,
    ) -> None:
        if max_queued < 1:
            raise ValueError("max_queued must be >= 1 (a Queue of size 0 would be unbounded)")
        self.root = root
        self.num_dropped = 0
        self.num_failed = 0
        self._files = HourFiles(root, fsync=fsync, max_open_files=max_open_files, idle_close_s=idle_close_s)
        self._clock = clock or MonotonicClock()
        self._sweep_s = min(idle_close_s / 2, 1.0)  # how often an idle writer looks for idle files
        self._queue: queue.Queue[_Job | None] = queue.Queue(max_queued)
        self._enqueue_lock = threading.Lock()  # orders enqueues with their count, and with close()
        self._num_enqueued = 0
        self._closed = False
        self._progress = threading.Condition()
        self._num_done = 0
        self._last_drop_log_s: float | None = None
        self._dirty_lock = threading.Lock()
        self._dirty: set[str] = set()  # keys changed since the last take_dirty()
        self._thread = threading.Thread(target=self._run, daemon=True, name="invocation-log-writer")
        self._thread.start()

    def write(self, entry: LogRecord, timestamp_s: float) -> None:
        job = _Job.of(entry, timestamp_s)
        with self._enqueue_lock:
            if not self._closed and self._enqueue(job):
                return
            reason = "the log sink is closed" if self._closed else "the log writer is behind"
        self._drop(job, reason)

    def flush(self, timeout_s: float = 10.0) -> bool:
        with self._enqueue_lock:
            target = self._num_enqueued
        with self._progress:
            return self._progress.wait_for(lambda: self._num_done >= target, timeout_s)

    def close(self) -> None:
        with self._enqueue_lock:
            if not self._closed:
                self._closed = True
                self._queue.put(None)  # after every record already queued; the writer makes room
        self._thread.join()

    def mark_dirty(self, keys: list[str]) -> None:
        with self._dirty_lock:
            self._dirty.update(keys)

    def take_dirty(self) -> list[str]:
        with self._dirty_lock:
            dirty, self._dirty = sorted(self._dirty), set()
        return dirty

    def _enqueue(self, job: _Job) -> bool:
        try:
            self._queue.put(job, timeout=ENQUEUE_TIMEOUT_S)
        except queue.Full:
            return False
        self._num_enqueued += 1
        return True

    def _drop(self, job: _Job, reason: str) -> None:
        now_s = self._clock.now_s()
        with self._progress:  # not the enqueue lock: another write may hold it while it waits for room
            self.num_dropped += 1
            num_dropped = self.num_dropped
            quiet = self._last_drop_log_s is not None and now_s - self._last_drop_log_s < DROP_LOG_INTERVAL_S
            if not quiet:
                self._last_drop_log_s = now_s
        if not quiet:
            log.error("dropped the log record of request %s: %s (%d dropped so far)",
                      job.request_id, reason, num_dropped)  # fmt: skip

    def _run(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=self._sweep_s)
            except queue.Empty:
                self._files.close_idle(self._clock.now_s())
                continue
            if job is None:
                break
            self._process(job)
        self._files.close_all()

    def _process(self, job: _Job) -> None:
        now_s = self._clock.now_s()
        try:
            self._store(job, now_s)
        except Exception:  # the writer thread's boundary: count, log, keep serving the queue
            self.num_failed += 1
            log.exception("writing the log record of request %s failed", job.request_id)
        finally:
            self._files.close_idle(now_s)
            with self._progress:
                self._num_done += 1
                self._progress.notify_all()

    def _store(self, job: _Job, now_s: float) -> None:
        prefix = hour_prefix(job.account, job.region, job.timestamp_s)
        for key, body in job.offloaded:
            self._files.put(prefix + key, gzip.compress(body))
            self.mark_dirty([prefix + key])
        member = gzip.compress(job.line)
        self.mark_dirty([self._files.append(job.account, job.region, job.timestamp_s, member, now_s)])


class S3Delivery:
    """Mirrors a LocalLogSink's files into a bucket (any S3-compatible endpoint) every `interval_s` and on
    close. A batch file is re-uploaded whole while it grows, so the bucket always holds complete gzip members."""

    def __init__(
        self, local: LocalLogSink, client: Any, bucket: str, prefix: str = "", interval_s: float = 5.0
    ) -> None:
        self.local, self.client, self.bucket, self.prefix = local, client, bucket, prefix
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(interval_s,), daemon=True, name="s3-log-delivery")
        self._thread.start()

    def write(self, entry: LogRecord, timestamp_s: float) -> None:
        pass  # the local sink is written by the recorder; this sink only mirrors it

    def flush(self, timeout_s: float) -> bool:
        return True  # nothing of its own is pending: uploads follow the local files at their interval

    def _loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.upload()

    def upload(self) -> None:
        failed = []
        for key in self.local.take_dirty():
            try:
                self.client.put_object(
                    Bucket=self.bucket, Key=self.prefix + key, Body=(self.local.root / key).read_bytes()
                )
            except Exception:  # delivery is retried at the next interval; the local copy is authoritative
                log.warning("S3 delivery of %s failed; will retry", key, exc_info=True)
                failed.append(key)
        self.local.mark_dirty(failed)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.local.flush()  # the last upload must see every record, whichever sink is closed first
        self.upload()
