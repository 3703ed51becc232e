"""One snapshot file: a header (magic, token count, KV byte count), the prompt's token IDs, the engine's KV
bytes. Written crash-safe (a temporary file, fsynced, then renamed); read back whole and verified against the
size and CRC-32 the manifest recorded, so a truncated, damaged or foreign file is `Unreadable`, never restored."""

from __future__ import annotations

import os
import struct
import zlib
from array import array
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"CPKV\x01\x00"
HEADER = struct.Struct("<6sIQ")  # magic, token count, KV byte count


class Unreadable(Exception):
    """A snapshot file that is missing, truncated, corrupt or not ours."""


@dataclass(frozen=True)
class Loaded:
    tokens: array[int]
    data: memoryview  # writable, over a buffer owned by this value (engines import without a copy)
    num_bytes: int  # of the whole file, for the read rate


def write_snapshot(path: Path, tokens: array[int], data: bytes | memoryview) -> tuple[int, int]:
    """(file bytes, CRC-32) once `path` holds the whole snapshot: never a partial file under that name."""
    tmp = path.with_suffix(".kv.tmp")
    header = HEADER.pack(MAGIC, len(tokens), memoryview(data).nbytes)
    crc = 0
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for part in (header, tokens.tobytes(), data):
            crc = zlib.crc32(part, crc)
            view = memoryview(part)
            while view.nbytes:
                view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path.stat().st_size, crc


def read_snapshot(path: Path, size: int, crc: int) -> Loaded:
    """The snapshot at `path`, which must be `size` bytes with this CRC-32. Raises `Unreadable`."""
    buffer = bytearray(size)
    try:
        with path.open("rb", buffering=0) as f:
            got = f.readinto(buffer)
            if got != size or f.read(1):
                raise Unreadable(f"{path.name} is {got}+ bytes, not {size}")
    except OSError as error:
        raise Unreadable(f"{path.name}: {error}") from None
    if zlib.crc32(buffer) != crc:
        raise Unreadable(f"{path.name} fails its checksum")
    magic, num_tokens, num_bytes = HEADER.unpack_from(buffer)
    start = HEADER.size + 4 * num_tokens
    if magic != MAGIC or start + num_bytes != size:
        raise Unreadable(f"{path.name} has a foreign header")
    tokens = array("i")
    tokens.frombytes(bytes(buffer[HEADER.size : start]))
    return Loaded(tokens, memoryview(buffer)[start:], size)
