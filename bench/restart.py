"""The cache across a `kill -9`, in one run, through the real HTTP API with boto3 (ConverseStream TTFT):

  per prefix size (1k/4k/8k tokens, real model): the cold write's TTFT with the disk tier on and off (what the
  disk write adds to the writing call), the TTFT of a RAM hit, and, after `kill -9` and a restart on the same
  data directory, the TTFT of the first read (a disk hit);
  recovery (fake engine, so that 1,000 entries take seconds to make): write N prefixes, `kill -9`, restart,
  the start-up recovery time, and the share of the entries live before the kill that still read.

Writes bench/results/restart.json and prints the README table.

    .venv/bin/python bench/restart.py [--sizes 1300 4300 7800] [--entries 1000]
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from engines import MODEL, Cachepoint, document, free_port, one_region, wait  # noqa: E402

RESULTS = Path(__file__).parent / "results"
REAL = "[engines.default]\ncontext_tokens = 8448\n"
FAKE = '[engines.default]\nkind = "fake"\ncontext_tokens = 4096\n'


@contextmanager
def server(state: Path, config: str) -> Iterator[tuple[str, Path]]:
    """`cachepoint serve` on `state`, ended with SIGKILL (nothing flushed on the way out)."""
    path = state / "cachepoint.toml"
    path.write_text(f'[server]\nstate_dir = "{state}"\n[logging]\nfsync = false\n' + config + one_region())
    port, log = free_port(), state / f"server-{time.monotonic_ns()}.log"
    process = subprocess.Popen([sys.executable, "-m", "cachepoint", "serve", "--config", str(path), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=log.open("wb"))  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait(lambda: httpx.get(f"{url}/health", timeout=1).status_code == 200, process)
        yield url, log
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def settled(url: str, files: int) -> None:
    """Wait until the disk tier holds `files` snapshots."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        tiers = httpx.get(f"{url}/cachepoint/cache", timeout=10).json()["cache"]["tiers"]
        if tiers["disk"]["files"] >= files:
            return
        time.sleep(0.05)
    raise RuntimeError(f"the disk tier did not reach {files} snapshots: {tiers}")


def ttft(engine: Cachepoint, text: str, question: str) -> tuple[float, str]:
    """TTFT of a cached question on `text` (ConverseStream), and its x-cachepoint-cache header."""
    content = [{"text": text}, {"cachePoint": {"type": "default"}}, {"text": question}]
    started = time.perf_counter()
    response = engine.client.converse_stream(modelId=MODEL, messages=[{"role": "user", "content": content}],
                                             inferenceConfig={"maxTokens": 1, "temperature": 0})  # fmt: skip
    first = None
    for event in response["stream"]:
        if "contentBlockDelta" in event and first is None:
            first = time.perf_counter() - started
    header = response["ResponseMetadata"]["HTTPHeaders"].get("x-cachepoint-cache", "")
    return first or time.perf_counter() - started, str(header)


def real_model(sizes: list[int]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    with TemporaryDirectory() as off_state, server(Path(off_state), REAL + "[cache]\ndisk_max_bytes = 0\n") as (url, _):
        engine = Cachepoint(url)
        for size in sizes:
            rows[str(size)] = {"cold_no_disk_ms": round(ttft(engine, document(f"off{size}", size), "Q1?")[0] * 1000)}
    with TemporaryDirectory() as state_dir:
        state = Path(state_dir)
        with server(state, REAL) as (url, _):
            engine = Cachepoint(url)
            for size in sizes:
                text = document(f"on{size}", size)
                cold, written = ttft(engine, text, "Q1?")
                if not written.startswith("written:"):
                    raise RuntimeError(f"the {size}-token prefix was not written ({written}): choose a larger size")
                ram, tier = ttft(engine, text, "Q2?")
                rows[str(size)] |= {"cold_ms": round(cold * 1000), "ram_hit_ms": round(ram * 1000), "ram_tier": tier}
            settled(url, len(sizes))
        with server(state, REAL) as (url, _):
            engine = Cachepoint(url)
            for size in sizes:
                disk, tier = ttft(engine, document(f"on{size}", size), "Q3?")
                row = rows[str(size)]
                row |= {"disk_hit_ms": round(disk * 1000), "disk_tier": tier}
                row |= {"disk_over_ram": round(row["disk_hit_ms"] / row["ram_hit_ms"], 2),
                        "disk_over_cold": round(row["disk_hit_ms"] / row["cold_ms"], 3),
                        "write_cost_ms": row["cold_ms"] - row["cold_no_disk_ms"]}  # fmt: skip
    return rows


def recovery(entries: int) -> dict[str, Any]:
    with TemporaryDirectory() as state_dir:
        state = Path(state_dir)
        texts = [document(f"rec{i}", 1400) for i in range(entries)]
        with server(state, FAKE) as (url, _):
            engine = Cachepoint(url)
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda t: ttft(engine, t, "Q?"), texts))
            settled(url, entries)
        with server(state, FAKE) as (url, log):
            found = re.search(r"recovered (\d+) entries \((\d+) snapshots\) in ([0-9.]+) s", log.read_text())
            assert found, "no recovery line in the server's log"
            engine = Cachepoint(url)
            with ThreadPoolExecutor(8) as pool:
                tiers = list(pool.map(lambda t: _tier(engine, t), texts))
    reads = sum(1 for t in tiers if t.startswith("hit:"))
    return {"entries": entries, "recovered": int(found[1]), "recovery_s": float(found[3]),
            "still_read": reads, "still_read_share": round(reads / entries, 4)}  # fmt: skip


def _tier(engine: Cachepoint, text: str) -> str:
    return ttft(engine, text, "Q?")[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1300, 4300, 7800])
    parser.add_argument("--entries", type=int, default=1000)
    args = parser.parse_args()
    results = {"sizes": real_model(args.sizes), "recovery": recovery(args.entries)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "restart.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(table(results))


def table(results: dict[str, Any]) -> str:
    head = ["prefix", "cold TTFT, no disk tier", "cold TTFT (write)", "RAM hit", "disk hit after kill -9",
            "disk / RAM", "disk / cold"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for size, r in results["sizes"].items():
        lines.append(f"| {int(size):,} | {r['cold_no_disk_ms']:,} ms | {r['cold_ms']:,} ms | {r['ram_hit_ms']:,} ms | "
                     f"{r['disk_hit_ms']:,} ms | {r['disk_over_ram']:.2f} | {r['disk_over_cold']:.3f} |")  # fmt: skip
    rec = results["recovery"]
    lines.append("")
    lines.append(f"Recovery: {rec['recovered']:,} of {rec['entries']:,} entries in {rec['recovery_s']:.2f} s; "
                 f"{rec['still_read']:,} ({rec['still_read_share']:.1%}) still read after the kill.")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
