"""Cross-Region routing on the novel-translation workload: `bedrock` vs `cache-affinity` vs `oracle`.

Several novels (~7k tokens each, the cached system prompt) are each translated by 3–5 tasks within a few
minutes, from several clients of one account, through `apac.anthropic.claude-sonnet-4-…` called from
ap-northeast-1: four destination Regions, ap-northeast-2 not caching (as in the published logs). Each
policy gets a fresh server (real HTTP, boto3 ConverseStream) on the fake engine with a simulated prefill
cost, and a compressed clock: requests in the same 20-second window run concurrently.

Figures per policy: hit rate = read tokens / cacheable tokens (read + write), cache-write tokens, cost at
the catalog's prices, p50/p95 client TTFT, errors, and each Region's peak load against its capacity.
Prints a table and writes bench/results/routing.json. Usage: python bench/routing.py [--novels 8]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cachepoint.accounting.pricing import cost_usd  # noqa: E402
from cachepoint.accounting.usage import Usage  # noqa: E402
from cachepoint.bootstrap import build_services  # noqa: E402
from cachepoint.clock import FakeClock  # noqa: E402
from cachepoint.engine.fake import FakeEngine  # noqa: E402
from cachepoint.routing.profiles import ProfileStore  # noqa: E402
from cachepoint.settings import EngineSettings, RoutingSettings, Settings  # noqa: E402
from tests.live import serve  # noqa: E402

MODEL = "apac.anthropic.claude-sonnet-4-6"
BASE = "anthropic.claude-sonnet-4-6"
SOURCE = "ap-northeast-1"
CAPACITY = 4  # jobs a Region's engine admits at once (queued + running)
PREFILL_S_PER_TOKEN = 0.0002  # the fake engine's simulated prefill cost
WINDOW_S = 20
CLIENT_KEYS = ["AKIDCLIENT1", "AKIDCLIENT2", "AKIDCLIENT3"]
RESULTS = Path(__file__).parent / "results" / "routing.json"


@dataclass(frozen=True)
class Task:
    at_s: int
    novel: int
    chapter: int
    client: str


def workload(novels: int, seed: int) -> list[Task]:
    rng = random.Random(seed)
    tasks = []
    for novel in range(novels):
        start = rng.randrange(0, 600, 5)
        for chapter in range(rng.randint(3, 5)):
            tasks.append(Task(start + rng.randrange(0, 240, 5), novel, chapter, rng.choice(CLIENT_KEYS)))
    return sorted(tasks, key=lambda t: (t.at_s, t.novel, t.chapter))


def novel_text(novel: int) -> str:
    rng = random.Random(novel)
    words = ["harbour", "lantern", "river", "winter", "letter", "garden", "station", "mirror", "orchard", "bridge"]
    return " ".join(f"{rng.choice(words)}{rng.randrange(100)}" for _ in range(800))


def run_policy(policy: str, tasks: list[Task]) -> dict[str, Any]:
    clock = FakeClock()
    settings = Settings(
        engines={"default": EngineSettings("default", kind="fake", max_queued_jobs=CAPACITY)},
        accounts=dict.fromkeys(CLIENT_KEYS, "123456789012"),
        routing=RoutingSettings(policy=policy, seed=11),
        regions_table={"regions": {"ap-northeast-2": {"prompt_caching_disabled": [BASE]}}},
        region=SOURCE,
    )
    engine = FakeEngine(prefill_s_per_token=PREFILL_S_PER_TOKEN)
    services = build_services(settings, engine_factory=lambda _: engine, clock=clock, profiles=ProfileStore(":memory:"))
    with serve(services) as server, Sampler(services) as sampler:
        clients = {key: _client(server.url, key) for key in CLIENT_KEYS}
        outcomes = _replay(tasks, clients, clock)
    return _summary(policy, outcomes, sampler.peaks, services)


def _replay(tasks: list[Task], clients: dict[str, Any], clock: FakeClock) -> list[dict[str, Any]]:
    outcomes: list[dict[str, Any]] = []
    now = 0
    with ThreadPoolExecutor(max_workers=len(CLIENT_KEYS) * 2) as pool:
        for window in sorted({t.at_s // WINDOW_S for t in tasks}):
            clock.tick(window * WINDOW_S - now)
            now = window * WINDOW_S
            batch = [t for t in tasks if t.at_s // WINDOW_S == window]
            outcomes += list(pool.map(lambda t: _call(clients[t.client], t), batch))
    return outcomes


def _call(client: Any, task: Task) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        response = client.converse_stream(
            modelId=MODEL,
            system=[{"text": novel_text(task.novel)}, {"cachePoint": {"type": "default"}}],
            messages=[{"role": "user", "content": [{"text": f"Translate chapter {task.chapter} into Japanese."}]}],
            inferenceConfig={"maxTokens": 8},
        )
        region = response["ResponseMetadata"]["HTTPHeaders"].get("x-amzn-bedrock-inference-region")
        ttft, usage = None, {}
        for event in response["stream"]:
            if "contentBlockDelta" in event and ttft is None:
                ttft = (time.perf_counter() - started) * 1000
            usage = event.get("metadata", {}).get("usage", usage)
        return {"ok": True, "ttft_ms": ttft, "usage": usage, "region": region}
    except Exception as error:  # noqa: BLE001 - a benchmark counts failures instead of stopping
        return {"ok": False, "error": type(error).__name__}


def _client(url: str, key: str) -> Any:
    config = Config(retries={"total_max_attempts": 1}, read_timeout=300, max_pool_connections=8)
    return boto3.client("bedrock-runtime", endpoint_url=url, region_name=SOURCE, aws_access_key_id=key,
                        aws_secret_access_key="x", config=config)  # fmt: skip


class Sampler:
    """Polls every Region's engine load to find its peak."""

    def __init__(self, services: Any) -> None:
        self.pool = services.inference.pools["default"]
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            for region, worker in self.pool.workers().items():
                self.peaks[region] = max(self.peaks.get(region, 0), worker.num_jobs)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _summary(policy: str, outcomes: list[dict[str, Any]], peaks: dict[str, int], services: Any) -> dict[str, Any]:
    done = [o for o in outcomes if o["ok"]]
    read = sum(o["usage"]["cacheReadInputTokens"] for o in done)
    write = sum(o["usage"]["cacheWriteInputTokens"] for o in done)
    prices = services.inference.catalog.get(BASE).prices
    cost = sum((cost_usd(_usage(o["usage"]), prices) for o in done), Decimal(0))
    ttfts = sorted(o["ttft_ms"] for o in done if o["ttft_ms"] is not None)
    return {
        "policy": policy,
        "requests": len(outcomes),
        "errors": len(outcomes) - len(done),
        "hit_rate": read / (read + write) if read + write else 0.0,
        "read_tokens": read,
        "write_tokens": write,
        "cost_usd": float(cost),
        "ttft_p50_ms": statistics.median(ttfts),
        "ttft_p95_ms": ttfts[math.ceil(0.95 * len(ttfts)) - 1],
        "regions_used": sorted({o["region"] for o in done}),
        "peak_load": peaks,
        "capacity": CAPACITY,
    }


def _usage(u: dict[str, int]) -> Usage:
    return Usage(u["inputTokens"], u["outputTokens"], u["cacheReadInputTokens"], u["cacheWriteInputTokens"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--novels", type=int, default=8)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    tasks = workload(args.novels, args.seed)
    rows = [run_policy(policy, tasks) for policy in ("bedrock", "cache-affinity", "oracle")]
    oracle = rows[-1]["hit_rate"]
    print(f"{len(tasks)} requests, {args.novels} novels, 4 destination Regions (ap-northeast-2 not caching)\n")
    print(
        f"{'policy':<15} {'hit rate':>9} {'vs oracle':>10} {'write tok':>10} {'cost $':>9} {'TTFT p50':>9} {'p95':>8} {'errors':>7} peak load / capacity"
    )
    for r in rows:
        peaks = " ".join(f"{k}:{v}" for k, v in sorted(r["peak_load"].items()))
        print(f"{r['policy']:<15} {r['hit_rate']:>9.3f} {r['hit_rate'] / oracle:>10.3f} {r['write_tokens']:>10} "
              f"{r['cost_usd']:>9.4f} {r['ttft_p50_ms']:>7.0f}ms {r['ttft_p95_ms']:>6.0f}ms {r['errors']:>7} {peaks} / {CAPACITY}")  # fmt: skip
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"requests": len(tasks), "rows": rows}, indent=2))
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
