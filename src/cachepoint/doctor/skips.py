"""Why an input was skipped, and the tally of skips that a load returns beside its records.

Two exceptions carry a skip through the reading stages: `Rejected` drops one document (a line, an
array item) and reading goes on; `Stop` ends one file or object, keeping what was read before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SkipReason(StrEnum):
    SYMLINK = "symlink"
    NOT_A_FILE = "not-a-file"
    UNREADABLE = "unreadable"
    MALFORMED_GZIP = "malformed-gzip"
    TRUNCATED_GZIP = "truncated-gzip"
    TOO_LARGE = "too-large"
    GZIP_BOMB = "gzip-bomb"
    DOCUMENT_TOO_LARGE = "document-too-large"
    INVALID_JSON = "invalid-json"
    TOO_DEEP = "too-deep"
    NOT_AN_OBJECT = "not-an-object"
    INVALID_RECORD = "invalid-record"

    def label(self, count: int) -> str:
        singular, plural = _LABELS[self]
        return singular if count == 1 else plural


_LABELS = {
    SkipReason.SYMLINK: ("symlink", "symlinks"),
    SkipReason.NOT_A_FILE: ("non-regular file", "non-regular files"),
    SkipReason.UNREADABLE: ("unreadable input", "unreadable inputs"),
    SkipReason.MALFORMED_GZIP: ("malformed gzip", "malformed gzips"),
    SkipReason.TRUNCATED_GZIP: ("truncated gzip", "truncated gzips"),
    SkipReason.TOO_LARGE: ("file over the size cap", "files over the size cap"),
    SkipReason.GZIP_BOMB: ("gzip bomb", "gzip bombs"),
    SkipReason.DOCUMENT_TOO_LARGE: ("line over the size cap", "lines over the size cap"),
    SkipReason.INVALID_JSON: ("invalid JSON line", "invalid JSON lines"),
    SkipReason.TOO_DEEP: ("record nested too deep", "records nested too deep"),
    SkipReason.NOT_AN_OBJECT: ("non-object record", "non-object records"),
    SkipReason.INVALID_RECORD: ("invalid record", "invalid records"),
}


@dataclass(frozen=True)
class Skipped:
    """`count` inputs of one file or object skipped for one reason; `detail` describes the first of them."""

    source: str
    reason: SkipReason
    count: int = 1
    detail: str = ""


class Rejected(ValueError):
    """One document (a line or an array item) is unusable; the rest of its file is still read."""

    def __init__(self, reason: SkipReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Stop(Exception):
    """The rest of a file or object is unusable; what was read before it stands."""

    def __init__(self, reason: SkipReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Tally:
    """Skips aggregated per (source, reason), so a file of a million bad lines costs one entry, not a million."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, SkipReason], Skipped] = {}

    def add(self, source: str, reason: SkipReason, detail: str) -> None:
        key = (source, reason)
        earlier = self._entries.get(key)
        if earlier is None:
            self._entries[key] = Skipped(source, reason, 1, detail)
        else:
            self._entries[key] = Skipped(source, reason, earlier.count + 1, earlier.detail)

    def skipped(self) -> tuple[Skipped, ...]:
        return tuple(self._entries.values())
