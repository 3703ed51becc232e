"""Load on the real server (loopback only, bounded in time): concurrent mixed requests — Converse,
ConverseStream and InvokeModelWithResponseStream; cached, newly written and uncached prompts — against
`cachepoint serve` on the embedded model, with a deliberately small cache budget.

Checks and prints: requests sent and answered, errors by type, invocation-log records (== requests),
p50/p95 latency per kind, and the server's peak RSS against its idle RSS + the cache budget + a stated
overhead. Writes bench/results/load.json. Usage: python bench/load.py [--seconds 45] [--clients 8]
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

MODEL = "anthropic.claude-haiku-4-5-20251001-v1:0"  # made on-demand below: one Region, one engine
BUDGET_BYTES = 256 * 2**20
OVERHEAD_BYTES = 512 * 2**20  # transient snapshot copies, request buffers, allocator slack
RESULTS = Path(__file__).parent / "results" / "load.json"
SHARED = " ".join(f"Rule {i}: every crate of apples leaves the harbour before noon on day {i}." for i in range(55))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=45)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        url, process = start_server(Path(state))
        try:
            result = run(url, process.pid, args.seconds, args.clients)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(120)
        result["log_records"] = count_records(Path(state) / "logs")
    report(result)


def start_server(state: Path) -> tuple[str, subprocess.Popen[bytes]]:
    config = state / "cachepoint.toml"
    config.write_text(
        f'[server]\nstate_dir = "{state}"\n[cache]\nmax_bytes = {BUDGET_BYTES}\n'
        f'[catalog.models."{MODEL}"]\non_demand = true\nmin_tokens = 1024\n[logging]\nfsync = true\n'
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "cachepoint", "serve", "--config", str(config), "--port", str(port)],
                               stdout=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            httpx.get(f"{url}/health", timeout=1)
            return url, process
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def run(url: str, pid: int, seconds: float, clients: int) -> dict[str, Any]:
    runtime = client(url)
    call(runtime, "converse", "cached", random.Random(0))  # loads the engine and writes the shared prefix
    idle_rss = rss(pid)["VmRSS"]
    outcomes: list[dict[str, Any]] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(seed: int) -> None:
        rng, mine = random.Random(seed), client(url)
        while time.monotonic() < deadline:
            op = rng.choice(["converse", "converse", "stream", "invoke-stream"])
            kind = rng.choices(["cached", "write", "uncached"], weights=[6, 2, 2])[0]
            outcome = call(mine, op, kind, rng)
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    peak = idle_rss
    while any(t.is_alive() for t in threads):
        peak = max(peak, rss(pid)["VmRSS"])
        time.sleep(0.2)
    return summarise(
        outcomes + [{"ok": True, "op": "converse", "kind": "cached", "ms": 0.0, "warmup": True}], idle_rss, peak
    )


def call(runtime: Any, op: str, kind: str, rng: random.Random) -> dict[str, Any]:
    system = {"cached": SHARED, "write": f"{SHARED} Batch {rng.random()}.", "uncached": "Be brief."}[kind]
    checkpoint = kind != "uncached"
    question = f"Question {rng.randrange(10**6)}: which day is it?"
    started = time.perf_counter()
    try:
        if op == "invoke-stream":
            block: dict[str, Any] = {"type": "text", "text": system}
            if checkpoint:
                block["cache_control"] = {"type": "ephemeral"}
            body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 12, "system": [block],
                    "messages": [{"role": "user", "content": question}]}  # fmt: skip
            list(runtime.invoke_model_with_response_stream(modelId=MODEL, body=json.dumps(body))["body"])
        else:
            system_blocks = [{"text": system}] + ([{"cachePoint": {"type": "default"}}] if checkpoint else [])
            kwargs = dict(modelId=MODEL, system=system_blocks, messages=[{"role": "user", "content": [{"text": question}]}],
                          inferenceConfig={"maxTokens": 12})  # fmt: skip
            if op == "stream":
                list(runtime.converse_stream(**kwargs)["stream"])
            else:
                runtime.converse(**kwargs)
        return {"ok": True, "op": op, "kind": kind, "ms": (time.perf_counter() - started) * 1000}
    except Exception as error:  # noqa: BLE001 - counted by type
        code = getattr(error, "response", {}).get("Error", {}).get("Code") or type(error).__name__
        return {"ok": False, "op": op, "kind": kind, "error": code, "ms": (time.perf_counter() - started) * 1000}


def client(url: str) -> Any:
    config = Config(retries={"total_max_attempts": 1}, read_timeout=300, max_pool_connections=4)
    return boto3.client("bedrock-runtime", endpoint_url=url, region_name="us-east-1", aws_access_key_id="AKIDLOAD",
                        aws_secret_access_key="x", config=config)  # fmt: skip


def rss(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024
    return fields


def summarise(outcomes: list[dict[str, Any]], idle_rss: int, peak_rss: int) -> dict[str, Any]:
    latencies: dict[str, list[float]] = {}
    for o in outcomes:
        if o["ok"] and not o.get("warmup"):
            latencies.setdefault(f"{o['op']}/{o['kind']}", []).append(o["ms"])
    return {
        "requests": len(outcomes),
        "answered": len(outcomes),  # every call returned (a response or an error), none hung past the deadline
        "errors": dict(Counter(o["error"] for o in outcomes if not o["ok"])),
        "latency_ms": {
            k: {"n": len(v), "p50": statistics.median(v), "p95": sorted(v)[math.ceil(0.95 * len(v)) - 1]}
            for k, v in sorted(latencies.items())
        },  # fmt: skip
        "idle_rss_bytes": idle_rss,
        "peak_rss_bytes": peak_rss,
        "budget_bytes": BUDGET_BYTES,
        "overhead_bytes": OVERHEAD_BYTES,
        "within_memory_bound": peak_rss <= idle_rss + BUDGET_BYTES + OVERHEAD_BYTES,
    }


def count_records(root: Path) -> int:
    return sum(
        len(gzip.decompress(p.read_bytes()).splitlines()) for p in root.rglob("*.json.gz") if "/data/" not in str(p)
    )


def report(r: dict[str, Any]) -> None:
    mib = lambda b: f"{b / 2**20:,.0f} MiB"  # noqa: E731
    print(
        f"requests {r['requests']}, answered {r['answered']}, errors {r['errors'] or 'none'}, log records {r['log_records']}"
    )
    print(f"server RSS idle {mib(r['idle_rss_bytes'])}, peak {mib(r['peak_rss_bytes'])}; bound = idle + budget "
          f"{mib(r['budget_bytes'])} + overhead {mib(r['overhead_bytes'])}: {'held' if r['within_memory_bound'] else 'EXCEEDED'}")  # fmt: skip
    print(f"\n{'kind':<28} {'n':>5} {'p50 ms':>9} {'p95 ms':>9}")
    for kind, row in r["latency_ms"].items():
        print(f"{kind:<28} {row['n']:>5} {row['p50']:>9.0f} {row['p95']:>9.0f}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(r, indent=2))
    print(f"\nwrote {RESULTS}")
    assert r["log_records"] == r["requests"], "every request must leave exactly one log record"


if __name__ == "__main__":
    main()
