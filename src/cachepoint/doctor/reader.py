"""Reading invocation logs: a file or a folder (S3 layout or not; .json, .jsonl, .json.gz with one or
many gzip members), or `s3://bucket/prefix` through boto3 (AWS_ENDPOINT_URL_S3 for S3-compatible stores).

Logs are input we do not control, so nothing in them may stop the read or hide the good records beside
it. A bad file, object or line is skipped, tallied with its reason, and reading goes on:

- files and objects stream through `inflate`, which caps the bytes read and inflated per file;
- a file is JSON Lines, or one JSON array (when it starts with `[` and parses whole, under the
  document cap); a line or an array item is one document, decoded by `records.decode` (no NaN, no
  nesting past `max_depth`) and validated into a `LogRecord`;
- symlinks inside a folder are never followed, and only regular files are opened (a FIFO would block).
  The source named on the command line may itself be a symlink: the user chose it.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any

from cachepoint.doctor.inflate import CHUNK_BYTES, inflate
from cachepoint.doctor.records import LogRecord, check_depth, decode, loads, parse_record
from cachepoint.doctor.skips import Rejected, Skipped, SkipReason, Stop, Tally

LOG_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")
_EXPORT_FILE = re.compile(r"^[0-9]{6}\.gz$")
_EXPORT_TIMESTAMP = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z (?=\{)")

Decoded = Callable[[], object]  # a document's JSON value, or Rejected; decoding waits until it is needed


@dataclass(frozen=True)
class Limits:
    """Caps on what one file or object may cost. Memory stays near `max_document_bytes` plus the records kept."""

    max_file_bytes: int = 256 * 2**20  # read or inflated, per file or object
    max_document_bytes: int = 16 * 2**20  # one line, or a whole-file JSON array
    max_depth: int = 64  # objects and arrays within one record
    max_inflate_ratio: int = 200  # see inflate.py for why a ratio as well as a size

    def __post_init__(self) -> None:
        if min(self.max_file_bytes, self.max_document_bytes, self.max_depth, self.max_inflate_ratio) < 1:
            raise ValueError(f"every limit must be positive: {self}")


DEFAULT_LIMITS = Limits()


def mebibytes(text: str) -> int:
    """Bytes in `text` MiB, for a cap on the command line; ValueError unless a positive whole number."""
    value = int(text)
    if value < 1:
        raise ValueError(f"not a positive number of MiB: {text}")
    return value * 2**20


@dataclass(frozen=True)
class LoadResult:
    """The records read, in time order, and what was skipped. Iterating yields the records, so
    `analyse(load_records(source), catalog)` reads as it did when this returned a list."""

    records: tuple[LogRecord, ...]
    skipped: tuple[Skipped, ...]

    def __iter__(self) -> Iterator[LogRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def num_skipped(self) -> int:
        return sum(s.count for s in self.skipped)


@dataclass(frozen=True)
class _Blob:
    name: str
    chunks: Callable[[], Iterator[bytes]]  # raises Stop for an input that cannot be read


def load_records(source: str, limits: Limits = DEFAULT_LIMITS) -> LoadResult:
    """Every ModelInvocationLog record under `source`. Raises FileNotFoundError when a local source does not
    exist and OSError when an s3:// listing fails before any key; every other problem becomes a skip."""
    tally = Tally()
    blobs = _s3_blobs(source, tally) if source.startswith("s3://") else _local_blobs(Path(source), tally)
    records = [record for blob in blobs for record in _read(blob, limits, tally)]
    records.sort(key=lambda r: r.time_s)
    return LoadResult(tuple(records), tally.skipped())


def _read(blob: _Blob, limits: Limits, tally: Tally) -> list[LogRecord]:
    records: list[LogRecord] = []
    content = inflate(blob.chunks(), limits.max_file_bytes, limits.max_inflate_ratio)  # lazy: nothing read yet
    try:
        for location, decoded in _documents(content, limits):
            record = _record(blob.name, location, decoded, tally)
            if record is not None:
                records.append(record)
    except Stop as stop:
        tally.add(blob.name, stop.reason, stop.detail)
    return records


def _record(name: str, location: str, decoded: Decoded, tally: Tally) -> LogRecord | None:
    try:
        return parse_record(decoded())
    except Rejected as rejected:
        tally.add(name, rejected.reason, f"{location}: {rejected.detail}")
        return None


# documents: JSON Lines, one JSON array, CloudWatch Logs' JSON (`aws logs filter-log-events` / `get-log-events`:
# {"events": [{"message": "<record>"}, ...]}), or CloudWatch's export to S3 (`<ISO time> <record>` per line)


def _documents(chunks: Iterator[bytes], limits: Limits) -> Iterator[tuple[str, Decoded]]:
    head, first_line = _skip_blank(chunks)
    if not head:
        return
    chunks = chain([head], chunks)
    if head.lstrip()[:1] in (b"[", b"{"):
        buffered, whole, stop = _buffer(chunks, limits.max_document_bytes)
        items = _whole_document_items(buffered, limits) if whole else None
        if items is not None:
            yield from items
            return
        chunks = _replay(buffered, stop, chunks)
    yield from _lines(chunks, limits, first_line)


def _skip_blank(chunks: Iterator[bytes]) -> tuple[bytes, int]:
    """The first chunk with content, and the line number it starts on (blank chunks are dropped, not kept)."""
    line = 1
    for chunk in chunks:
        if chunk.strip():
            return chunk, line
        line += chunk.count(b"\n")
    return b"", line


def _buffer(chunks: Iterator[bytes], max_bytes: int) -> tuple[list[bytes], bool, Stop | None]:
    """Chunks until the stream ends (whole), passes `max_bytes`, or stops (the Stop is returned, to raise later)."""
    buffered: list[bytes] = []
    size = 0
    try:
        for chunk in chunks:
            buffered.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                return buffered, False, None
    except Stop as stop:
        return buffered, False, stop
    return buffered, True, None


def _replay(buffered: list[bytes], stop: Stop | None, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield from buffered
    if stop is not None:
        raise stop
    yield from rest


def _whole_document_items(buffered: list[bytes], limits: Limits) -> list[tuple[str, Decoded]] | None:
    """Records of a file that is one JSON array, or CloudWatch Logs' `{"events": [...]}`; None otherwise (then it
    is read as JSON Lines: `[1,2]` may be a bad line, and a one-record file is a line too)."""
    try:
        value = loads(_text(b"".join(buffered)))
    except Rejected:
        return None
    if isinstance(value, list):
        return [(f"item {i}", partial(_checked, item, limits.max_depth)) for i, item in enumerate(value, 1)]
    events = value.get("events") if isinstance(value, dict) else None
    if not isinstance(events, list):
        return None
    return [(f"event {i}", partial(_event_message, event, limits.max_depth)) for i, event in enumerate(events, 1)]


def _event_message(event: object, max_depth: int) -> object:
    """A CloudWatch Logs event's `message`: the invocation record as Bedrock delivered it, a JSON string."""
    message = event.get("message") if isinstance(event, dict) else None
    if not isinstance(message, str):
        raise Rejected(SkipReason.INVALID_RECORD, "a CloudWatch Logs event without a message string")
    return decode(message, max_depth)


def _checked(value: object, max_depth: int) -> object:
    check_depth(value, max_depth)
    return value


def _lines(chunks: Iterator[bytes], limits: Limits, line_no: int) -> Iterator[tuple[str, Decoded]]:
    """Complete lines only: a line cut off by a Stop is dropped with the Stop, never parsed half."""
    cap = limits.max_document_bytes
    pending, overlong = bytearray(), False
    for chunk in chunks:
        *complete, tail = chunk.split(b"\n")
        for piece in complete:
            overlong = overlong or len(pending) + len(piece) > cap
            yield from _line(line_no, None if overlong else bytes(pending + piece), limits)
            pending.clear()
            overlong, line_no = False, line_no + 1
        overlong = overlong or len(pending) + len(tail) > cap
        if overlong:
            pending.clear()
        else:
            pending += tail
    yield from _line(line_no, None if overlong else bytes(pending), limits)


def _line(line_no: int, data: bytes | None, limits: Limits) -> Iterator[tuple[str, Decoded]]:
    location = f"line {line_no}"
    if data is None:
        detail = f"longer than {limits.max_document_bytes:,} bytes"
        yield location, partial(_reject, SkipReason.DOCUMENT_TOO_LARGE, detail)
    elif data.strip():
        text = _EXPORT_TIMESTAMP.sub("", _text(data), count=1)  # CloudWatch's export to S3 prefixes each line
        yield location, partial(decode, text, limits.max_depth)


def _reject(reason: SkipReason, detail: str) -> object:
    raise Rejected(reason, detail)


def _text(data: bytes) -> str:
    # a stray invalid byte in a prompt should not cost the record, so it becomes U+FFFD
    return data.decode("utf-8", errors="replace").removeprefix("\ufeff")


# sources: local files and folders, S3 objects


def _is_log(name: str) -> bool:
    """Record files, not the offloaded bodies stored beside them (`data/<requestId>_input.json.gz`); CloudWatch's
    exports to S3 are numbered gz files (`<task>/<stream>/000000.gz`)."""
    base = name.rsplit("/", 1)[-1]
    offloaded = "/data/" in name or base.endswith(("_input.json.gz", "_output.json.gz"))
    return (name.endswith(LOG_SUFFIXES) or bool(_EXPORT_FILE.match(base))) and not offloaded


def _local_blobs(root: Path, tally: Tally) -> Iterator[_Blob]:
    if not os.path.lexists(root):
        raise FileNotFoundError(f"no logs at {root}")
    if root.is_dir():
        yield from _walk(root, tally)
    else:
        yield _Blob(str(root), partial(_read_local, root, follow=True))


def _walk(root: Path, tally: Tally) -> Iterator[_Blob]:
    """Log files under `root`, depth first in name order, never through a symlink (a loop, or /etc)."""
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as error:
            tally.add(os.path.relpath(folder, root), SkipReason.UNREADABLE, error.strerror or str(error))
            continue
        subfolders = []
        for entry in entries:
            name = os.path.relpath(entry.path, root)
            if entry.is_symlink():
                tally.add(name, SkipReason.SYMLINK, "symlinks inside a folder are not followed")
            elif entry.is_dir(follow_symlinks=False):
                subfolders.append(Path(entry.path))
            elif _is_log(entry.name):
                yield _Blob(name, partial(_read_local, Path(entry.path), follow=False))
        pending.extend(reversed(subfolders))


def _read_local(path: Path, *, follow: bool) -> Iterator[bytes]:
    # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise Stop(SkipReason.SYMLINK, "a symlink (replaced after listing) or a symlink loop") from None
        raise Stop(SkipReason.UNREADABLE, error.strerror or str(error)) from None
    with os.fdopen(fd, "rb", buffering=0) as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Stop(SkipReason.NOT_A_FILE, "not a regular file (a FIFO, socket or device)")
        try:
            while chunk := file.read(CHUNK_BYTES):
                yield chunk
        except OSError as error:
            raise Stop(SkipReason.UNREADABLE, error.strerror or str(error)) from None


def _s3_blobs(uri: str, tally: Tally) -> Iterator[_Blob]:
    import boto3  # only when reading from S3

    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    client = boto3.client("s3")
    for key in _s3_keys(client, bucket, prefix, tally):
        if _is_log(key):
            yield _Blob(key, partial(_read_s3, client, bucket, key))


def _s3_keys(client: Any, bucket: str, prefix: str, tally: Tally) -> list[str]:
    """Every key first, then reading: a listing that fails midway keeps the keys it found."""
    from botocore.exceptions import BotoCoreError, ClientError

    keys: list[str] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [str(item["Key"]) for item in page.get("Contents", [])]
    except (BotoCoreError, ClientError) as error:
        if not keys:
            raise OSError(f"cannot list s3://{bucket}/{prefix}: {error}") from None
        tally.add(f"s3://{bucket}/{prefix}", SkipReason.UNREADABLE, f"listing stopped after {len(keys)} keys: {error}")
    return keys


def _read_s3(client: Any, bucket: str, key: str) -> Iterator[bytes]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            yield from body.iter_chunks(CHUNK_BYTES)
        finally:
            body.close()
    except (BotoCoreError, ClientError, OSError) as error:
        raise Stop(SkipReason.UNREADABLE, str(error)) from None
