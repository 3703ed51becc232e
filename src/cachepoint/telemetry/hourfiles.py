"""The invocation-log files on disk, used by the log writer thread only (so nothing here locks).

    <root>/AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/<yyyymmddThhmmssZ>_<uuid>.json.gz
    <root>/AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/data/<request id>_<kind>.json.gz

Design decisions:
- One file per account, Region and hour, named after its first record. Each (account, Region) remembers
  its current file's name, so a handle closed for room or idleness reopens the *same* file and appends.
  A record for another hour starts a new file (a late one for an earlier hour too; S3 readers take any
  number of files per hour).
- Open handles are bounded: at most `max_open_files` hour files, the least recently used closed first, and
  any idle for `idle_close_s` closed. Made-up accounts and Regions cost a remembered name each (forgotten
  when a later hour starts and their file is closed), never a file descriptor. Writing an offloaded body
  holds one more descriptor for the duration of that write.
- A record is one complete gzip member appended to an O_APPEND descriptor. If the append (or its fsync)
  fails, the file is cut back to its previous length and its handle dropped, so a torn member never sits
  in front of later records (gzip readers stop at the first bad member).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from cachepoint.files import open_private, private_dir, write_all

log = logging.getLogger(__name__)
Pair = tuple[str, str]  # (account, Region)


def hour_prefix(account: str, region: str, timestamp_s: float) -> str:
    hour = time.strftime("%Y/%m/%d/%H", time.gmtime(timestamp_s))
    return f"AWSLogs/{account}/BedrockModelInvocationLogs/{region}/{hour}/"


@dataclass(frozen=True)
class _HourFile:
    prefix: str
    hour: int  # hours since the epoch, to tell which remembered names are over
    path: Path


@dataclass
class _Handle:
    fd: int
    size: int  # where to cut back to if an append fails; ours is the only writer
    last_used_s: float


class HourFiles:
    def __init__(self, root: Path, *, fsync: bool, max_open_files: int, idle_close_s: float) -> None:
        if max_open_files < 1 or idle_close_s <= 0:
            raise ValueError("max_open_files must be >= 1 and idle_close_s > 0")
        self.root = root
        self._fsync = fsync
        self._max_open_files = max_open_files
        self._idle_close_s = idle_close_s
        self._names: dict[Pair, _HourFile] = {}
        self._handles: OrderedDict[Path, _Handle] = OrderedDict()  # least recently used first
        self._newest_hour = 0

    @property
    def num_open(self) -> int:
        return len(self._handles)

    def append(self, account: str, region: str, timestamp_s: float, member: bytes, now_s: float) -> str:
        """Appends one gzip member to the pair's hour file; returns the file's key (path under root)."""
        pair = (account, region)
        path = self._hour_file(pair, timestamp_s).path
        handle = self._handle(path, now_s)
        try:
            write_all(handle.fd, member)
            if self._fsync:
                os.fsync(handle.fd)
        except OSError:
            if not self._cut_back(path, handle):
                del self._names[pair]  # the file ends in a torn member: later records go to a new file
            raise
        handle.size += len(member)
        return str(path.relative_to(self.root))

    def put(self, key: str, data: bytes) -> None:
        """Writes a whole object (an offloaded body), replacing any earlier one under that key."""
        path = self.root / key
        private_dir(path.parent)
        fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            write_all(fd, data)
            if self._fsync:  # durable before the record that points at it
                os.fsync(fd)
        finally:
            os.close(fd)

    def close_idle(self, now_s: float) -> None:
        while self._handles:
            path, handle = next(iter(self._handles.items()))
            if now_s - handle.last_used_s < self._idle_close_s:
                return
            self._close(path)

    def close_all(self) -> None:
        for path in list(self._handles):
            self._close(path)

    def _hour_file(self, pair: Pair, timestamp_s: float) -> _HourFile:
        prefix = hour_prefix(*pair, timestamp_s)
        current = self._names.get(pair)
        if current is not None and current.prefix == prefix:
            return current
        if current is not None:
            self._close(current.path)
        name = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(timestamp_s)) + f"_{uuid.uuid4()}.json.gz"
        hour_file = _HourFile(prefix, int(timestamp_s // 3600), self.root / prefix / name)
        self._names[pair] = hour_file
        self._forget_past_hours(hour_file.hour)
        return hour_file

    def _forget_past_hours(self, hour: int) -> None:
        """Runs once per new hour, so remembered names stay bounded by the pairs seen in about an hour."""
        if hour <= self._newest_hour:
            return
        self._newest_hour = hour
        self._names = {p: f for p, f in self._names.items() if f.hour >= hour or f.path in self._handles}

    def _handle(self, path: Path, now_s: float) -> _Handle:
        handle = self._handles.get(path)
        if handle is None:
            while len(self._handles) >= self._max_open_files:
                self._close(next(iter(self._handles)))
            handle = self._open(path, now_s)
        self._handles.move_to_end(path)
        handle.last_used_s = now_s
        return handle

    def _open(self, path: Path, now_s: float) -> _Handle:
        private_dir(path.parent)
        fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        handle = _Handle(fd, os.fstat(fd).st_size, now_s)
        self._handles[path] = handle
        return handle

    def _cut_back(self, path: Path, handle: _Handle) -> bool:
        try:
            os.ftruncate(handle.fd, handle.size)
        except OSError:
            log.exception("could not cut %s back to its last whole record", path)
            return False
        finally:
            self._close(path)
        return True

    def _close(self, path: Path) -> None:
        handle = self._handles.pop(path, None)
        if handle is None:
            return
        try:
            os.close(handle.fd)
        except OSError:  # nothing is buffered in-process, so the appends already succeeded or were counted
            log.warning("closing %s failed", path, exc_info=True)
