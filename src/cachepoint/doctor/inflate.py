"""Bounded streaming decompression of one log file or object: plain bytes, or gzip with one or many members.

Output comes in chunks of at most CHUNK_BYTES and is never held whole, so memory stays flat whatever the
file inflates to. A chunk is yielded before it is counted, so the records in it are kept and a cap is
passed by at most one chunk. Reading ends with `Stop` when:

    malformed-gzip   zlib rejects the data, or non-gzip bytes follow a member
    truncated-gzip   the input ends inside a member
    too-large        more than `max_bytes` read or inflated
    gzip-bomb        past GRACE_BYTES, the output outgrows the input more than `max_ratio` times

Why a ratio as well as the size cap: under the cap alone, 1 MB of gzip could still become 256 MiB of
records in memory. Deflate tops out near 1032× (a run of one byte), and a record repeated verbatim gives
240-300×; real logs measured well below that (a benchmark repeating one 30 KB prompt in every record: 118×),
so 200× stops the bombs gzip tools make and leaves those logs alone. The ratio applies past GRACE_BYTES, so
small, very repetitive files stay readable. A file crafted to stay under the ratio still meets the size cap:
then memory follows `max_bytes`, as it would for a plain file that large.
"""

from __future__ import annotations

import zlib
from collections.abc import Generator, Iterable, Iterator
from itertools import chain

from cachepoint.doctor.skips import SkipReason, Stop

CHUNK_BYTES = 64 * 1024
GRACE_BYTES = 8 * 2**20
GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip header and trailer, not raw deflate or zlib


def inflate(chunks: Iterable[bytes], max_bytes: int, max_ratio: int) -> Iterator[bytes]:
    """The decompressed content of `chunks` (sniffed: gzip by its magic, otherwise plain)."""
    head, rest = _sniff(iter(chunks))
    budget = _Budget(max_bytes, max_ratio)
    if not head.startswith(GZIP_MAGIC):
        yield from _plain(head, rest, budget)
        return
    gunzip = _Gunzip(budget)
    for piece in chain([head], rest):
        yield from gunzip.feed(piece)
    gunzip.finish()


def _sniff(chunks: Iterator[bytes]) -> tuple[bytes, Iterator[bytes]]:
    """The first two bytes or more (a source may hand out tiny chunks), and the chunks after them."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= len(GZIP_MAGIC):
            break
    return head, chunks


def _plain(head: bytes, rest: Iterator[bytes], budget: _Budget) -> Iterator[bytes]:
    for piece in chain([head], rest):
        if piece:
            yield piece
        budget.take(len(piece), len(piece))


class _Budget:
    def __init__(self, max_bytes: int, max_ratio: int) -> None:
        self.max_bytes, self.max_ratio = max_bytes, max_ratio
        self.read_bytes = self.inflated_bytes = 0

    def take(self, read_bytes: int, inflated_bytes: int) -> None:
        self.read_bytes += read_bytes
        self.inflated_bytes += inflated_bytes
        if max(self.read_bytes, self.inflated_bytes) > self.max_bytes:
            raise Stop(SkipReason.TOO_LARGE, f"over the cap of {self.max_bytes:,} bytes; the rest is not read")
        if self.inflated_bytes > GRACE_BYTES and self.inflated_bytes > self.max_ratio * self.read_bytes:
            raise Stop(
                SkipReason.GZIP_BOMB,
                f"inflates over {self.max_ratio}× ({self.read_bytes:,} bytes → {self.inflated_bytes:,}); "
                "the rest is not read",
            )


class _Gunzip:
    """Members one after another, as `gzip` reads them; zero padding between or after members is allowed."""

    def __init__(self, budget: _Budget) -> None:
        self.budget = budget
        self.inflater: zlib._Decompress | None = None  # None: between members
        self.num_members = 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        self.budget.take(len(data), 0)
        while data:
            if self.inflater is None:
                data = data.lstrip(b"\0")
                if not data:
                    return
                self.inflater = zlib.decompressobj(_GZIP_WBITS)
                self.num_members += 1
            data = yield from self._inflate(self.inflater, data)

    def _inflate(self, inflater: zlib._Decompress, data: bytes) -> Generator[bytes, None, bytes]:
        """Inflates `data` into the current member; returns the input left over after the member ends."""
        while True:
            try:
                out = inflater.decompress(data, CHUNK_BYTES)
            except zlib.error as error:
                raise Stop(SkipReason.MALFORMED_GZIP, f"gzip member {self.num_members}: {error}") from None
            if out:
                yield out
            self.budget.take(0, len(out))
            if inflater.eof:
                self.inflater = None
                return inflater.unused_data
            data = inflater.unconsumed_tail
            # a full chunk may leave output pending inside zlib even when all input is consumed
            if not data and len(out) < CHUNK_BYTES:
                return b""

    def finish(self) -> None:
        if self.inflater is not None:
            raise Stop(SkipReason.TRUNCATED_GZIP, f"the input ends inside gzip member {self.num_members}")
