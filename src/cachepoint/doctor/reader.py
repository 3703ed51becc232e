"""Reading invocation logs: a file or a folder (S3 layout or not; .json, .jsonl, .json.gz with one or
many gzip members), or `s3://bucket/prefix` through boto3 (AWS_ENDPOINT_URL_S3 for S3-compatible stores)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LOG_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")


def load_records(source: str) -> list[dict[str, Any]]:
    blobs = _s3_blobs(source) if source.startswith("s3://") else _local_blobs(Path(source))
    records = [r for name, data in blobs for r in _parse(name, data)]
    return sorted((r for r in records if r.get("schemaType", "ModelInvocationLog") == "ModelInvocationLog"),
                  key=lambda r: str(r.get("timestamp", "")))  # fmt: skip


def _local_blobs(path: Path) -> Iterator[tuple[str, bytes]]:
    if not path.exists():
        raise FileNotFoundError(f"no logs at {path}")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and _is_log(p.name))
    for file in files:
        yield file.name, file.read_bytes()


def _s3_blobs(uri: str) -> Iterator[tuple[str, bytes]]:
    import boto3  # only when reading from S3

    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    client = boto3.client("s3")
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if _is_log(item["Key"]):
                yield item["Key"], client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()


def _is_log(name: str) -> bool:
    """Record files, not the offloaded bodies stored beside them (`data/<requestId>_input.json.gz`)."""
    base = name.rsplit("/", 1)[-1]
    offloaded = "/data/" in name or base.endswith(("_input.json.gz", "_output.json.gz"))
    return name.endswith(LOG_SUFFIXES) and not offloaded


def _parse(name: str, data: bytes) -> list[dict[str, Any]]:
    text = (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode("utf-8", errors="replace").strip()
    if not text:
        return []
    if text.startswith("["):
        loaded = json.loads(text)
        return [r for r in loaded if isinstance(r, dict)]
    return [json.loads(line) for line in text.splitlines() if line.strip()]
