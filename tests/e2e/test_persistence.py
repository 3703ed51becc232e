"""The cache survives `kill -9`: boto3 → `cachepoint serve` (its own process) on the real model, killed with
SIGKILL and started again on the same data directory. Live prefixes still read (from disk), expired ones
miss as expired, damaged snapshots miss cleanly, another model file misses, accounts stay apart, and a RAM
budget too small for two snapshots demotes to disk and still hits."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from tests.process import ServerProcess, serving

SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"  # min 1,024 tokens per checkpoint
CP = {"cachePoint": {"type": "default"}}
SNAPSHOT_BYTES = 30 * 2**20  # one ~1,100-token snapshot of the embedded model fits; two do not
A, B = "AKIDPERSISTA", "AKIDPERSISTB"


def config(weights: str) -> str:
    down = "".join(f"[regions.{r}]\ndown = true\n" for r in OTHER_REGIONS)  # one engine: a faster start
    return (
        f'[engines.default]\nweights = "{weights}"\ncontext_tokens = 4096\n[cache]\nmax_bytes = {SNAPSHOT_BYTES}\n'
        + down
    )


OTHER_REGIONS = ["us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "eu-west-3", "ap-northeast-1",
                 "ap-southeast-2", "ap-northeast-2"]  # fmt: skip


def document(tag: str) -> str:
    return " ".join(f"Note {tag}-{i}: the ledger for week {i} lists {i * 7} crates of apples." for i in range(48))


def converse(server: ServerProcess, key: str, tag: str) -> tuple[str, dict[str, Any], str]:
    """(x-cachepoint-cache, usage, text) of a cached question on document `tag`, at temperature 0."""
    client = boto3.client("bedrock-runtime", endpoint_url=server.url, region_name="us-east-1",
                          aws_access_key_id=key, aws_secret_access_key="x",
                          config=Config(retries={"total_max_attempts": 1}, read_timeout=120))  # fmt: skip
    response = client.converse(
        modelId=SONNET,
        messages=[{"role": "user", "content": [{"text": document(tag)}, CP, {"text": "Summarise the notes."}]}],
        inferenceConfig={"maxTokens": 8, "temperature": 0},
    )
    text = response["output"]["message"]["content"][0]["text"]
    return response["ResponseMetadata"]["HTTPHeaders"]["x-cachepoint-cache"], response["usage"], text


def disk_files(server: ServerProcess, at_least: int) -> None:
    """Wait until the disk tier holds `at_least` snapshots (writes land off the request path)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        tiers = httpx.get(f"{server.url}/cachepoint/cache", timeout=5).json()["cache"]["tiers"]
        if tiers["disk"]["files"] >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError(f"the disk tier never held {at_least} snapshots: {tiers}")


@contextmanager
def killed(tmp_path: Path, weights: str = "Q8_0") -> Iterator[ServerProcess]:
    """A server that ends with SIGKILL: nothing is flushed or closed on the way out."""
    with serving(tmp_path, config(weights)) as server:
        yield server
        server.process.kill()
        server.process.wait()


def test_the_cache_survives_kill_9(tmp_path: Path) -> None:
    with killed(tmp_path) as first:
        cold_header, cold_usage, cold_text = converse(first, A, "kept")
        written = cold_usage["cacheWriteInputTokens"]
        assert cold_header == f"written:{written}:5m:new" and written >= 1024
        sizes = {}
        for tag in ("expiring", "damaged"):  # each write pushes the one before out of the 30 MiB of RAM
            header, usage, _ = converse(first, A, tag)
            sizes[tag] = usage["cacheWriteInputTokens"]
            assert header == f"written:{sizes[tag]}:5m:prefix-changed"  # the account has other prefixes cached
        disk_files(first, 3)
        header, usage, _ = converse(first, A, "kept")
        assert header == f"hit:{written}:5m:disk", "demoted to disk under the RAM budget, and still a hit"
        assert usage["cacheReadInputTokens"] == written

    manifest = tmp_path / "state" / "kv" / "manifest.sqlite"
    with sqlite3.connect(manifest) as db:  # as if the server had been down for six minutes for that entry
        (blob,) = db.execute("SELECT blob_id FROM snapshots ORDER BY blob_id").fetchall()[1]
        db.execute("UPDATE entries SET expires_at = expires_at - 3600 WHERE blob_id = ?", (blob,))
        (damaged,) = db.execute("SELECT blob_id FROM snapshots ORDER BY blob_id").fetchall()[2]
    snapshot = tmp_path / "state" / "kv" / "snapshots" / f"{damaged}.kv"
    data = bytearray(snapshot.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the checksum can tell
    snapshot.write_bytes(bytes(data))

    with killed(tmp_path) as second:
        assert re.search(r"recovered 2 entries \(2 snapshots\) in [0-9.]+ s; dropped: 1 expired", second.stderr())
        header, usage, text = converse(second, A, "kept")
        assert header == f"hit:{written}:5m:disk" and usage["cacheReadInputTokens"] == written
        assert usage["cacheWriteInputTokens"] == 0 and text == cold_text, "restored KV gives the cold output"
        assert converse(second, B, "kept")[0] == f"written:{written}:5m:new", "B never reads A's prefix"
        assert converse(second, A, "expiring")[0] == f"written:{sizes['expiring']}:5m:expired"
        header, usage, _ = converse(second, A, "damaged")
        assert header == f"written:{sizes['damaged']}:5m:snapshot-unreadable" and usage["cacheReadInputTokens"] == 0
        assert "fails its checksum" in second.stderr()

    with killed(tmp_path, weights="F16") as third:  # another model file: another fingerprint
        assert re.search(r"dropped: [0-9]+ fingerprint", third.stderr())
        assert converse(third, A, "kept")[0] == f"written:{written}:5m:new"
