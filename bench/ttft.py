"""Cold vs cached time to first token through the real HTTP API (boto3 → cachepoint → llama.cpp).

For cached prefixes of about 1k, 4k and 8k tokens plus a ~50-token suffix: a cold call writes the
prefix, then a call with a new suffix reads it, both through ConverseStream. Figures per size:
  ttft      the client's time from sending the request to the first text delta, in ms
  latency   the client's wall time for the whole call (maxTokens=16), in ms
  bytes/token  snapshot bytes stored per cached token, against the engine's KV bytes per token
  restore / snapshot  time spent importing / exporting the KV state
Prints a table and writes bench/results/ttft.json. Usage: python bench/ttft.py [--sizes 1100,4000,8000]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
TARGETS = {1100: 0.06, 4000: 0.025, 8000: 0.015}  # "1k" sits above the 1,024 minimum
RESULTS = Path(__file__).parent / "results" / "ttft.json"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1100,4000,8000")
    sizes = [int(s) for s in parser.parse_args().sizes.split(",")]
    with server() as url:
        client = boto3.client(
            "bedrock-runtime",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="AKIDBENCH",
            aws_secret_access_key="x",
            config=Config(read_timeout=600, retries={"total_max_attempts": 1}),
        )
        rows = [measure(client, url, size) for size in sizes]
    print_table(rows)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"model": MODEL, "rows": rows}, indent=2))
    print(f"\nwrote {RESULTS}")


def measure(client: Any, url: str, size: int) -> dict[str, Any]:
    document = sized_document(client, size)
    before = stats(url)["cache"]["num_bytes"]
    cold = call(client, url, document, "Question one: which week lists the most crates, and how many are there?")
    after = stats(url)
    cached = call(client, url, document, "Question two: which week lists the fewest crates, and how many are there?")
    written = cold["usage"]["cacheWriteInputTokens"]
    assert cached["usage"]["cacheReadInputTokens"] == written, "the second call must read the prefix"
    kv = after["engines"]["default@us-east-1"]["kv_bytes_per_token"]
    bytes_per_token = (after["cache"]["num_bytes"] - before) / written
    return {
        "prefix_tokens": written,
        "suffix_tokens": cached["usage"]["inputTokens"],
        "cold_ttft_ms": cold["ttft_ms"],
        "cached_ttft_ms": cached["ttft_ms"],
        "ttft_ratio": cached["ttft_ms"] / cold["ttft_ms"],
        "target_ratio": TARGETS.get(size),
        "cold_latency_ms": cold["wall_ms"],
        "cached_latency_ms": cached["wall_ms"],
        "snapshot_ms": cold["prefill"]["snapshot_s"] * 1000,
        "restore_ms": cached["prefill"]["restore_s"] * 1000,
        "stored_bytes_per_token": bytes_per_token,
        "kv_bytes_per_token": kv,
        "bytes_ratio": bytes_per_token / kv,
    }


def call(client: Any, url: str, document: str, question: str) -> dict[str, Any]:
    started = time.perf_counter()
    response = client.converse_stream(
        modelId=MODEL,
        system=[{"text": document}, {"cachePoint": {"type": "default"}}],
        messages=[{"role": "user", "content": [{"text": question}]}],
        inferenceConfig={"maxTokens": 16, "temperature": 0},
    )
    first_ms, usage = None, {}
    for event in response["stream"]:
        if "contentBlockDelta" in event and first_ms is None:
            first_ms = (time.perf_counter() - started) * 1000
        usage = event.get("metadata", {}).get("usage", usage)
    wall_ms = (time.perf_counter() - started) * 1000
    return {
        "usage": usage,
        "wall_ms": wall_ms,
        "ttft_ms": first_ms,
        "prefill": stats(url)["engines"]["default@us-east-1"]["last_prefill"],
    }


def sized_document(client: Any, size: int) -> str:
    """Sentences until CountTokens says the system prompt holds `size` tokens (±1 sentence)."""
    sentence = "Week {i}: the harbour ledger lists {n} crates of apples and {m} barrels of cider."
    lines: list[str] = []
    while True:
        lines.append(sentence.format(i=len(lines), n=len(lines) * 7 % 113, m=len(lines) * 3 % 41))
        if len(lines) % 20 == 0 and count(client, " ".join(lines)) >= size:
            while count(client, " ".join(lines[:-1])) >= size:
                lines.pop()
            return " ".join(lines)


def count(client: Any, text: str) -> int:
    converse = {"system": [{"text": text}], "messages": [{"role": "user", "content": [{"text": "x"}]}]}
    return int(client.count_tokens(modelId=MODEL.removeprefix("us."), input={"converse": converse})["inputTokens"])


def stats(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/cachepoint/cache").json()


class server:
    """`cachepoint serve` in a subprocess on a free port."""

    def __enter__(self) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cachepoint", "serve", "--port", str(port)], stdout=subprocess.DEVNULL
        )
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                httpx.get(f"{url}/health")
                return url
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'prefix':>7} {'cold TTFT':>10} {'cached':>8} {'ratio':>7} {'target':>7} {'cold call':>10} {'cached call':>12} "
        f"{'snapshot':>9} {'restore':>8} {'bytes/tok':>10} {'vs KV':>6}"
    )
    for r in rows:
        target = f"{r['target_ratio']:.3f}" if r["target_ratio"] else "-"
        print(
            f"{r['prefix_tokens']:>7} {r['cold_ttft_ms']:>8.0f}ms {r['cached_ttft_ms']:>6.0f}ms {r['ttft_ratio']:>7.3f} "
            f"{target:>7} {r['cold_latency_ms']:>8.0f}ms {r['cached_latency_ms']:>10.0f}ms {r['snapshot_ms']:>7.1f}ms "
            f"{r['restore_ms']:>6.1f}ms {r['stored_bytes_per_token']:>10.0f} {r['bytes_ratio']:>6.3f}"
        )


if __name__ == "__main__":
    main()
