"""Hostile invocation logs for the doctor's tests: each file holds good records beside the damage.

`write_hostile_folder` lays out one file per hostile input and returns what a reader must make of it:
the request ids of the good records in it, and the skip reason(s) it must be tallied under.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cachepoint.doctor.skips import SkipReason

MODEL = "us.anthropic.claude-sonnet-4-20250514-v1:0"
DOC = "The archive holds letters from the harbour master about shipments and weather. " * 40


def record(request_id: str, when: str = "2026-11-20T10:05:00Z", *, read: int = 1500, write: int = 0,
           region: str = "us-west-2", system: str = DOC, **extra: Any) -> dict[str, Any]:  # fmt: skip
    body = {"system": [{"text": system}, {"cachePoint": {"type": "default"}}],
            "messages": [{"role": "user", "content": [{"text": f"question {request_id}"}]}]}  # fmt: skip
    return {"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": when, "accountId": "111122223333",
            "region": "us-west-2", "inferenceRegion": region, "requestId": request_id, "operation": "Converse",
            "modelId": MODEL, "input": {"inputBodyJson": body, "inputTokenCount": 20, "cacheReadInputTokenCount": read,
            "cacheWriteInputTokenCount": write}, "output": {"outputTokenCount": 5}, **extra}  # fmt: skip


def line(value: Any) -> bytes:
    return (json.dumps(value) + "\n").encode()


def with_input(request_id: str, **members: Any) -> dict[str, Any]:
    bad = record(request_id)
    bad["input"].update(members)
    return bad


@dataclass
class Expected:
    good_ids: list[str]
    reasons: dict[SkipReason, int] = field(default_factory=dict)  # reason → inputs skipped for it


def bomb_member(unit: bytes, inflated_bytes: int) -> bytes:
    """One gzip member of `unit` repeated to `inflated_bytes`; members concatenate into a valid gzip file."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = unit * (2**20 // len(unit))
    parts = [compressor.compress(block) for _ in range(inflated_bytes // len(block))]
    return b"".join(parts) + compressor.flush()


def write_hostile_folder(root: Path, outside: Path) -> dict[str, Expected]:
    """Every hostile input under `root`, each beside good records (`outside` holds symlink targets)."""
    root.mkdir(parents=True, exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)
    expected = {
        "good.jsonl": _good(root),
        "malformed.json.gz": _malformed_gzip(root),
        "malformed-header.json.gz": _malformed_header(root),
        "truncated.json.gz": _truncated_gzip(root),
        "deep.jsonl": _deep(root),
        "not-objects.jsonl": _not_objects(root),
        "wrong-types.jsonl": _wrong_types(root),
        "nan.jsonl": _nan(root),
        "bad-time.jsonl": _bad_time(root),
        "bad-model.jsonl": _bad_model(root),
        "bomb.json.gz": _bomb(root),
    }
    expected |= _symlinks(root, outside)
    return expected


def _good(root: Path) -> Expected:
    # the findings the CLI must still print: a first write, a hit, then a switch to another Region
    (root / "good.jsonl").write_bytes(
        line(record("good-1", "2026-11-20T10:00:00Z", read=0, write=1500, region="us-west-2"))
        + line(record("good-2", "2026-11-20T10:01:00Z", read=1500, region="us-west-2"))
        + line(record("good-3", "2026-11-20T10:02:00Z", read=0, write=1500, region="us-east-2"))
    )
    return Expected(["good-1", "good-2", "good-3"])


def _malformed_gzip(root: Path) -> Expected:
    # a good member, then a second one with a sound header and deflate data of a reserved block type
    garbage = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + b"\xff" * 16
    (root / "malformed.json.gz").write_bytes(gzip.compress(line(record("mal-1"))) + garbage)
    return Expected(["mal-1"], {SkipReason.MALFORMED_GZIP: 1})


def _malformed_header(root: Path) -> Expected:
    (root / "malformed-header.json.gz").write_bytes(b"\x1f\x8bnot a gzip header at all")
    return Expected([], {SkipReason.MALFORMED_GZIP: 1})


def _truncated_gzip(root: Path) -> Expected:
    members = [gzip.compress(line(record(f"trunc-{i}"))) for i in range(1, 4)]
    (root / "truncated.json.gz").write_bytes(members[0] + members[1] + members[2][: len(members[2]) // 2])
    return Expected(["trunc-1", "trunc-2"], {SkipReason.TRUNCATED_GZIP: 1})


def _deep(root: Path) -> Expected:
    deep = "[" * 1000 + "]" * 1000
    # 500 deep parses, but pydantic and the translators would recurse through it
    nested = with_input("deep-500", inputBodyJson={"messages": json.loads("[" * 500 + "]" * 500)})
    (root / "deep.jsonl").write_bytes(line(record("deep-ok")) + deep.encode() + b"\n" + line(nested))
    return Expected(["deep-ok"], {SkipReason.TOO_DEEP: 2})


def _not_objects(root: Path) -> Expected:
    (root / "not-objects.jsonl").write_bytes(b'[1,2]\n"x"\n3\nnull\ntrue\n' + line(record("obj-ok")))
    return Expected(["obj-ok"], {SkipReason.NOT_AN_OBJECT: 5})


def _wrong_types(root: Path) -> Expected:
    bad = [
        {**record("t-1"), "input": "x"},
        with_input("t-2", inputTokenCount="abc"),
        with_input("t-3", inputTokenCount=[1]),
        with_input("t-4", cacheReadInputTokenCount=-5),
        with_input("t-5", cacheWriteInputTokenCount=True),
        with_input("t-6", inputTokenCount=2.5),
        {**record("t-7"), "timestamp": 5},
        {**record("t-8"), "output": {"outputTokenCount": {"n": 1}}},
        {**record("t-9"), "requestId": ["r"]},
    ]
    (root / "wrong-types.jsonl").write_bytes(b"".join(map(line, bad)) + line(record("types-ok")))
    return Expected(["types-ok"], {SkipReason.INVALID_RECORD: len(bad)})


def _nan(root: Path) -> Expected:
    text = json.dumps(record("nan-x"))
    lines = [text.replace('"inputTokenCount": 20', f'"inputTokenCount": {bad}') for bad in ("NaN", "Infinity", "-Infinity", "1e999")]  # fmt: skip
    (root / "nan.jsonl").write_bytes("\n".join(lines).encode() + b"\n" + line(record("nan-ok")))
    return Expected(["nan-ok"], {SkipReason.INVALID_JSON: 4})


def _bad_time(root: Path) -> Expected:
    bad = [record("bt-1", "yesterday"), record("bt-2", "2026-02-30T10:00:00Z"), record("bt-3", "2026-11-20 10:00:00")]
    (root / "bad-time.jsonl").write_bytes(b"".join(map(line, bad)) + line(record("time-ok")))
    return Expected(["time-ok"], {SkipReason.INVALID_RECORD: 3})


def _bad_model(root: Path) -> Expected:
    unpriced = [{**record("m-colons"), "modelId": "::::"}, {**record("m-arn"), "modelId": "arn:aws:bedrock:xx:zz/../\x1b[2J"}]  # fmt: skip
    (root / "bad-model.jsonl").write_bytes(b"".join(map(line, unpriced)) + line({**record("m-42"), "modelId": 42}))
    return Expected(["m-colons", "m-arn"], {SkipReason.INVALID_RECORD: 1})


def _bomb(root: Path) -> Expected:
    # 64 MiB of zeros in ~64 KB, after a good member: the ratio cap stops it past 8 MiB
    (root / "bomb.json.gz").write_bytes(gzip.compress(line(record("bomb-ok"))) + bomb_member(b"\0", 64 * 2**20))
    return Expected(["bomb-ok"], {SkipReason.GZIP_BOMB: 1})


def _symlinks(root: Path, outside: Path) -> dict[str, Expected]:
    huge = outside / "huge.json"
    with huge.open("wb") as file:
        file.truncate(8 * 2**30)  # sparse: 8 GiB that cost nothing unless read
    os.symlink("/etc/passwd", root / "passwd.json")
    os.symlink(huge, root / "huge.json")
    os.symlink("loop.json", root / "loop.json")
    os.symlink(".", root / "again")  # a folder loop, if it were followed
    os.mkfifo(root / "fifo.jsonl")
    return {
        "passwd.json": Expected([], {SkipReason.SYMLINK: 1}),
        "huge.json": Expected([], {SkipReason.SYMLINK: 1}),
        "loop.json": Expected([], {SkipReason.SYMLINK: 1}),
        "again": Expected([], {SkipReason.SYMLINK: 1}),
        "fifo.jsonl": Expected([], {SkipReason.NOT_A_FILE: 1}),
    }
