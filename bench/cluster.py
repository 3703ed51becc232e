"""The fleet: the novel-translation workload across 1, 2 and 3 `cachepoint node` replicas of one Region.

Separate processes as in production: Redis (the cache directory, scripts/services.sh), one gateway
(`cachepoint serve`) and N nodes (`cachepoint node`) on the fake engine with a simulated prefill and decode
cost, so the figures measure routing and caching, not this machine's 2 cores. Clients call ConverseStream
through boto3 from a pool of threads, as fast as answers come back (closed loop): each novel's system prompt
(~8k tokens) is cached, then its chapters are asked for.

Runs: cache-affinity on 1, 2 and 3 replicas; round-robin on 3 (the cache-blind baseline); cache-affinity on 3
with one node killed (SIGKILL) mid-run. Figures per run:
- billed hit rate: read / (read + write) tokens in the responses' usage (Bedrock's accounting: a Region's
  cache, whichever replica holds it);
- physical hit rate: the read tokens a replica actually restored (hits not `recomputed`) over the same total;
- p50/p95 time to first token (client side), throughput (requests/s), errors (requests lost).
Prints a table, writes bench/results/cluster.json. Usage: python bench/cluster.py [--novels 12 --chapters 6]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.live import free_port  # noqa: E402
from tests.process import ServerProcess, start, stop  # noqa: E402

SECRET = "fleet-benchmark-secret-0123456789"
MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
PREFILL_S_PER_TOKEN = 0.0001  # ~0.8 s for a novel's 8k-token prompt, cold
DECODE_S_PER_TOKEN = 0.05  # engine time dominates the processes' own CPU on 2 cores
OUTPUT_TOKENS = 8
CLIENTS = 8
RESULTS = Path(__file__).parent / "results" / "cluster.json"


@dataclass(frozen=True)
class Run:
    label: str
    replicas: int
    policy: str = "cache-affinity"
    kill_one: bool = False


RUNS = (
    Run("1 replica", 1),
    Run("2 replicas", 2),
    Run("3 replicas", 3),
    Run("3 replicas, round-robin", 3, "round-robin"),
    Run("3 replicas, one killed mid-run", 3, kill_one=True),
)


def novel_text(novel: int) -> str:
    rng = random.Random(novel)
    words = ["harbour", "lantern", "river", "winter", "letter", "garden", "station", "mirror", "orchard", "bridge"]
    return f"Translate novel {novel} faithfully. " + " ".join(f"{rng.choice(words)}{rng.randrange(100)}" for _ in range(800))


def tasks(novels: int, chapters: int, seed: int = 7) -> list[tuple[int, int]]:
    """Chapter by chapter, novels in a new random order each round: they interleave, and no fixed order lines
    a novel up with one replica (which would flatter round-robin)."""
    rng = random.Random(seed)
    work = []
    for chapter in range(chapters):
        order = list(range(novels))
        rng.shuffle(order)
        work += [(novel, chapter) for novel in order]
    return work


def redis(root: Path, port: int, *args: str) -> None:
    env = os.environ | {"CACHEPOINT_REDIS_PORT": str(port), "CACHEPOINT_SERVICES": str(root)}
    subprocess.run(["bash", "scripts/services.sh", *args], check=True, capture_output=True, env=env, timeout=300)


def node_config(name: str) -> str:
    return (f'[engines.default]\nkind = "fake"\nfake_prefill_s_per_token = {PREFILL_S_PER_TOKEN}\n'
            f'fake_decode_s_per_token = {DECODE_S_PER_TOKEN}\n[cluster]\nsecret = "{SECRET}"\nname = "{name}"\n')  # fmt: skip


def gateway_config(ports: list[int], redis_port: int, policy: str) -> str:
    replicas = ", ".join(f'"node://127.0.0.1:{p}"' for p in ports)
    return (
        f'[engines.default]\nkind = "fake"\n[cache]\ndirectory = "redis://127.0.0.1:{redis_port}/0"\n'
        f'[cluster]\nsecret = "{SECRET}"\nhealth_interval_s = 0.5\n[logging]\nfsync = false\n'
        f'[routing]\nreplica_policy = "{policy}"\n[limits]\nmax_concurrent_per_account = 64\n'
        f"[regions.us-east-1]\nreplicas = [{replicas}]\n[regions.us-east-2]\ndown = true\n[regions.us-west-2]\ndown = true\n"
    )


def call(url: str, novel: int, chapter: int) -> dict[str, Any]:
    client = boto3.client("bedrock-runtime", endpoint_url=url, region_name="us-east-1", aws_access_key_id="AKIDFLEET",
                          aws_secret_access_key="x", config=Config(retries={"total_max_attempts": 1}, read_timeout=120))  # fmt: skip
    started = time.perf_counter()
    try:
        response = client.converse_stream(
            modelId=MODEL,
            system=[{"text": novel_text(novel)}, {"cachePoint": {"type": "default"}}],
            messages=[{"role": "user", "content": [{"text": f"Chapter {chapter}."}]}],
            inferenceConfig={"maxTokens": OUTPUT_TOKENS, "temperature": 0},
        )
        first, usage = None, None
        for event in response["stream"]:
            if "contentBlockDelta" in event and first is None:
                first = time.perf_counter() - started
            if "metadata" in event:
                usage = event["metadata"]["usage"]
        headers = response["ResponseMetadata"]["HTTPHeaders"]
        return {"ok": usage is not None, "ttft_s": first, "usage": usage or {}, "cache": headers.get("x-cachepoint-cache", ""),
                "replica": headers.get("x-cachepoint-replica", "")}  # fmt: skip
    except Exception as error:  # a lost request: counted, not fatal to the benchmark
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:200]}


def run(spec: Run, work: list[tuple[int, int]], root: Path) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(dir=root))
    redis_port = free_port()
    redis(folder, redis_port, "redis")
    nodes: list[ServerProcess] = []
    ports = [free_port() for _ in range(spec.replicas)]
    try:
        for i, port in enumerate(ports):
            (folder / f"node{i}").mkdir()
            nodes.append(start(folder / f"node{i}", node_config(f"node{i}"), command="node", port=port))
        (folder / "gateway").mkdir()
        gateway = start(folder / "gateway", gateway_config(ports, redis_port, spec.policy))
        try:
            _wait_up(gateway, spec.replicas)
            return measure(spec, work, gateway, nodes)
        finally:
            stop(gateway)
    finally:
        for node in nodes:
            stop(node)
        pid = (folder / "redis" / "redis.pid").read_text().strip()
        os.kill(int(pid), signal.SIGKILL)


def _wait_up(gateway: ServerProcess, replicas: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        view = httpx.get(f"{gateway.url}/cachepoint/cluster", timeout=5).json()
        if sum(r["up"] for r in view["regions"]["us-east-1"]["default"]) == replicas:
            return
        time.sleep(0.2)
    raise RuntimeError("replicas did not come up")


def measure(spec: Run, work: list[tuple[int, int]], gateway: ServerProcess, nodes: list[ServerProcess]) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    lock = threading.Lock()
    if spec.kill_one:
        def killer() -> None:
            while len(results) < len(work) // 2:
                time.sleep(0.01)
            nodes[-1].process.send_signal(signal.SIGKILL)

        threading.Thread(target=killer, daemon=True).start()

    def one(task: tuple[int, int]) -> None:
        result = call(gateway.url, *task)
        with lock:
            results.append(result)

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(one, work))
    elapsed = time.perf_counter() - started
    return summarize(spec, results, elapsed)


def summarize(spec: Run, results: list[dict[str, Any]], elapsed: float) -> dict[str, Any]:
    ok = [r for r in results if r["ok"]]
    read = sum(r["usage"].get("cacheReadInputTokens", 0) for r in ok)
    written = sum(r["usage"].get("cacheWriteInputTokens", 0) for r in ok)
    restored = sum(r["usage"].get("cacheReadInputTokens", 0) for r in ok if not r["cache"].endswith(":recomputed"))
    ttfts = sorted(r["ttft_s"] for r in ok if r["ttft_s"] is not None)
    return {
        "run": spec.label,
        "replicas": spec.replicas,
        "policy": spec.policy,
        "requests": len(results),
        "lost": len(results) - len(ok),
        "billed_hit_rate": read / max(read + written, 1),
        "physical_hit_rate": restored / max(read + written, 1),
        "ttft_p50_ms": 1000 * statistics.median(ttfts) if ttfts else None,
        "ttft_p95_ms": 1000 * ttfts[int(0.95 * (len(ttfts) - 1))] if ttfts else None,
        "throughput_rps": len(ok) / elapsed,
        "replicas_used": sorted({r["replica"] for r in ok}),
        "errors": sorted({r["error"] for r in results if not r["ok"]})[:5],
    }


def table(rows: list[dict[str, Any]]) -> str:
    base = rows[0]
    lines = ["| run | physical hit rate (vs 1 replica) | billed hit rate | TTFT p50 / p95 | throughput (vs 1 replica) | lost |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['physical_hit_rate']:.1%} ({r['physical_hit_rate'] / base['physical_hit_rate']:.2f}×) "
            f"| {r['billed_hit_rate']:.1%} | {r['ttft_p50_ms']:.0f} / {r['ttft_p95_ms']:.0f} ms "
            f"| {r['throughput_rps']:.1f} req/s ({r['throughput_rps'] / base['throughput_rps']:.2f}×) | {r['lost']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--novels", type=int, default=12)
    parser.add_argument("--chapters", type=int, default=6)
    args = parser.parse_args()
    work = tasks(args.novels, args.chapters)
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for spec in RUNS:
            rows.append(run(spec, work, Path(root)))
            print(json.dumps(rows[-1]), flush=True)
    print(table(rows))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"novels": args.novels, "chapters": args.chapters, "clients": CLIENTS,
                                   "prefill_s_per_token": PREFILL_S_PER_TOKEN, "decode_s_per_token": DECODE_S_PER_TOKEN,
                                   "runs": rows}, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
