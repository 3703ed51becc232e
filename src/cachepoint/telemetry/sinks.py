"""Where invocation-log records go: a local folder laid out like Bedrock's S3 delivery, and optionally
an S3-compatible bucket with the same keys.

    <root>/AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/<yyyymmddThhmmssZ>_<uuid>.json.gz
One file per account, Region and hour; each record is appended as its own gzip member and flushed to
disk before `write` returns, so a crash loses at most the record in flight (gzip readers read all members).
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

from cachepoint.telemetry.records import LogRecord

log = logging.getLogger(__name__)


class LogSink(Protocol):
    def write(self, entry: LogRecord, timestamp_s: float) -> None: ...

    def close(self) -> None: ...


def hour_prefix(account: str, region: str, timestamp_s: float) -> str:
    hour = time.strftime("%Y/%m/%d/%H", time.gmtime(timestamp_s))
    return f"AWSLogs/{account}/BedrockModelInvocationLogs/{region}/{hour}/"


class LocalLogSink:
    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root
        self._fsync = fsync
        self._files: dict[tuple[str, str], tuple[str, Any]] = {}  # (account, region) → (hour prefix, file)
        self._lock = threading.Lock()
        self._dirty: set[str] = set()  # keys changed since the last take_dirty()

    def write(self, entry: LogRecord, timestamp_s: float) -> None:
        record = entry.record
        prefix = hour_prefix(record["accountId"], record["region"], timestamp_s)
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with self._lock:
            for key, body in entry.offloaded.items():
                self._write_file(prefix + key, gzip.compress(body))
            handle = self._hour_file(record["accountId"], record["region"], prefix, timestamp_s)
            handle.write(gzip.compress(line))
            handle.flush()
            if self._fsync:
                os.fsync(handle.fileno())
            self._dirty.add(str(Path(handle.name).relative_to(self.root)))

    def _hour_file(self, account: str, region: str, prefix: str, timestamp_s: float) -> Any:
        current = self._files.get((account, region))
        if current is not None and current[0] == prefix:
            return current[1]
        if current is not None:
            current[1].close()
        name = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(timestamp_s)) + f"_{uuid.uuid4()}.json.gz"
        path = self.root / prefix / name
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("ab")
        self._files[(account, region)] = (prefix, handle)
        return handle

    def _write_file(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self._dirty.add(key)

    def mark_dirty(self, keys: list[str]) -> None:
        with self._lock:
            self._dirty.update(keys)

    def take_dirty(self) -> list[str]:
        with self._lock:
            dirty, self._dirty = sorted(self._dirty), set()
        return dirty

    def close(self) -> None:
        with self._lock:
            for _, handle in self._files.values():
                handle.close()
            self._files.clear()


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
        self.upload()
